// Which addresses a webhook may reach: pure checks of IP addresses and URL host names against the
// ranges a tenant must not reach from inside the service (loopback, private, carrier-grade NAT,
// link-local and the cloud metadata address, unique-local, multicast, reserved, documentation),
// including IPv4 written as one decimal or hex number or with octal parts, and IPv4 inside IPv6
// (mapped, compatible, NAT64, 6to4, Teredo). Used at rule creation on the host as written, and at delivery
// on every address DNS gives (the connection then goes to the address that was checked).
import { isIP } from 'node:net';

/** Host names refused whatever they resolve to (metadata services, the local host). */
const FORBIDDEN_HOST_NAMES = [
  'localhost',
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'instance-data',
  'instance-data.ec2.internal',
];

/** [first address, prefix length, what it is] of each forbidden IPv4 range. */
const IPV4_RANGES: [string, number, string][] = [
  ['0.0.0.0', 8, 'this network'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'IETF protocol assignments'],
  ['192.0.2.0', 24, 'documentation'],
  ['192.88.99.0', 24, '6to4 relay'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'],
  ['203.0.113.0', 24, 'documentation'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

/** Parses IPv4 as inet_aton does: 1 to 4 parts, each decimal, 0x hex or 0-led octal, the last
 *  filling the remaining bytes (`2130706433`, `0x7f.1`, `0177.0.0.1` are all 127.0.0.1). */
export function parseIPv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length < 1 || parts.length > 4) return null;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : parseInt(part.slice(2), 16);
    else if (/^0[0-7]+$/.test(part)) value = parseInt(part.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(part)) value = Number(part);
    else return null;
    if (!Number.isSafeInteger(value)) return null;
    values.push(value);
  }
  const last = values.pop()!;
  if (values.some((v) => v > 255)) return null;
  if (last >= 2 ** (8 * (4 - values.length))) return null;
  let address = 0;
  values.forEach((v, i) => (address += v * 2 ** (8 * (3 - i))));
  return address + last;
}

/** The 16 bytes of an IPv6 address (a trailing dotted IPv4 part allowed), or null. */
export function parseIPv6(text: string): number[] | null {
  let body = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const zone = body.indexOf('%');
  if (zone >= 0) body = body.slice(0, zone);
  if (isIP(body) !== 6) return null;
  let tail: number[] = [];
  const lastColon = body.lastIndexOf(':');
  const lastPart = body.slice(lastColon + 1);
  if (lastPart.includes('.')) {
    const v4 = parseIPv4(lastPart);
    if (v4 === null) return null;
    tail = [v4 >>> 24, (v4 >>> 16) & 255, (v4 >>> 8) & 255, v4 & 255];
    body = body.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = body.includes('::') ? body.split('::') : [body, undefined];
  const groups = (s: string | undefined) => (s === undefined || s === '' ? [] : s.split(':'));
  const left = groups(head);
  const right = groups(rest);
  const missing = 8 - left.length - right.length;
  const all = rest === undefined ? left : [...left, ...Array<string>(missing).fill('0'), ...right];
  if (all.length !== 8) return null;
  const bytes = all.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 255];
  });
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function inIPv4Range(address: number, first: string, prefix: number): boolean {
  const base = parseIPv4(first)!;
  const size = 2 ** (32 - prefix);
  return address >= base && address < base + size;
}

function ipv4Reason(address: number): string | null {
  if (address === 0xffffffff) return 'broadcast';
  for (const [first, prefix, what] of IPV4_RANGES) {
    if (inIPv4Range(address, first, prefix)) return what;
  }
  return null;
}

function ipv6Reason(bytes: number[]): string | null {
  const zero = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  const v4At = (at: number) =>
    ((bytes[at] << 24) >>> 0) + (bytes[at + 1] << 16) + (bytes[at + 2] << 8) + bytes[at + 3];
  if (zero(0, 16)) return 'unspecified';
  if (zero(0, 15) && bytes[15] === 1) return 'loopback';
  // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d carry an IPv4 address.
  if (zero(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return ipv4Reason(v4At(12));
  if (zero(0, 12)) return ipv4Reason(v4At(12)) ?? 'IPv4-compatible';
  // IPv4-translated ::ffff:0:a.b.c.d (SIIT, RFC 2765) carries one too
  if (zero(0, 8) && bytes[8] === 0xff && bytes[9] === 0xff && zero(10, 12))
    return ipv4Reason(v4At(12)) ?? 'IPv4-translated';
  // NAT64 64:ff9b::/96 and 6to4 2002::/16 reach the IPv4 address they embed; local-use NAT64
  // 64:ff9b:1::/48 (RFC 8215) is a private translator, however it embeds it.
  const nat64 = bytes[0] === 0 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b;
  if (nat64 && zero(4, 12)) return ipv4Reason(v4At(12));
  if (nat64 && bytes[4] === 0 && bytes[5] === 1) return 'local-use NAT64';
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return ipv4Reason(v4At(2));
  if ((bytes[0] & 0xfe) === 0xfc) return 'unique-local (cloud metadata)';
  if (bytes[0] === 0xfe && (bytes[1] & 0xc0) === 0x80) return 'link-local';
  if (bytes[0] === 0xfe && (bytes[1] & 0xc0) === 0xc0) return 'site-local';
  if (bytes[0] === 0xff) return 'multicast';
  if (bytes[0] === 0x20 && bytes[1] === 0x01 && bytes[2] === 0x0d && bytes[3] === 0xb8)
    return 'documentation';
  // 2001::/23, IPv6's IETF protocol assignments (as 192.0.0.0/24): Teredo 2001::/32 (a relay
  // reaches the IPv4 address it embeds), benchmarking, ORCHID, AS112 and the like
  if (bytes[0] === 0x20 && bytes[1] === 0x01 && (bytes[2] & 0xfe) === 0)
    return 'IETF protocol assignments (Teredo)';
  if (bytes[0] === 0x01 && zero(1, 8)) return 'discard-only';
  return null;
}

/** Why a webhook must not reach this IP address (IPv4 in any inet_aton form, or IPv6), or null
 *  when it may; a string that is no IP address gives null (see forbiddenHostReason). */
export function forbiddenAddressReason(address: string): string | null {
  const v6 = parseIPv6(address);
  if (v6 !== null) return ipv6Reason(v6);
  const v4 = parseIPv4(address);
  if (v4 !== null) return ipv4Reason(v4);
  return null;
}

/** Whether the host of a URL is an IP address literal (in any form parseIPv4/parseIPv6 read). */
export function isAddressLiteral(host: string): boolean {
  return parseIPv6(host) !== null || parseIPv4(host) !== null;
}

/** Why a URL's host (as written) is refused: a forbidden name or address literal; or null. */
export function forbiddenHostReason(host: string): string | null {
  const name = host.toLowerCase().replace(/\.$/, '');
  if (FORBIDDEN_HOST_NAMES.includes(name) || name.endsWith('.localhost')) {
    return 'a local or metadata host name';
  }
  return forbiddenAddressReason(name);
}

/** The problem with a webhook URL, or null: http(s) only, no credentials, and (unless private
 *  addresses are allowed) no forbidden host. */
export function webhookUrlProblem(url: string, allowPrivate: boolean): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'must be http or https';
  if (parsed.username !== '' || parsed.password !== '') return 'must not carry credentials';
  if (allowPrivate) return null;
  const reason = forbiddenHostReason(parsed.hostname);
  return reason === null ? null : `reaches ${reason} addresses`;
}
