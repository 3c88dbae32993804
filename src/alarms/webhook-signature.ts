// The signature of a webhook notification, Stripe's scheme: the header
// `Wharf-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. Signing the
// timestamp with the body lets a receiver refuse replays (a t older than its tolerance).
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'wharf-signature';

export function signWebhook(secret: string, timestampSeconds: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

/** Whether `header` signs `body` with `secret`, made at most `toleranceSeconds` before `nowMs`. */
export function verifyWebhookSignature(
  secret: string,
  header: string,
  body: string,
  toleranceSeconds = 300,
  nowMs = Date.now(),
): boolean {
  const fields = new Map<string, string[]>();
  for (const item of header.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) continue;
    const name = item.slice(0, eq).trim();
    fields.set(name, [...(fields.get(name) ?? []), item.slice(eq + 1).trim()]);
  }
  const t = fields.get('t')?.[0];
  if (t === undefined || !/^\d+$/.test(t)) return false;
  if (Math.abs(nowMs / 1000 - Number(t)) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, Number(t), body).split(',v1=')[1], 'hex');
  return (fields.get('v1') ?? []).some((candidate) => {
    const given = Buffer.from(candidate, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
