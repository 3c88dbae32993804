import t from 'tap';
import {
  forbiddenAddressReason,
  forbiddenHostReason,
  parseIPv4,
  parseIPv6,
  webhookUrlProblem,
} from '../../src/alarms/index.js';

t.test('IPv4 in every inet_aton form', async (t) => {
  for (const [text, value] of [
    ['127.0.0.1', 0x7f000001],
    ['2130706433', 0x7f000001],
    ['0x7f000001', 0x7f000001],
    ['0x7f.1', 0x7f000001],
    ['0177.0.0.1', 0x7f000001],
    ['127.1', 0x7f000001],
    ['10.0.258', 0x0a000102],
    ['0', 0],
  ] as const) {
    t.equal(parseIPv4(text), value, text);
  }
  for (const bad of ['256.0.0.1', '1.2.3.4.5', '1.2.3.256', '4294967296', 'abc', '1..2', '08'])
    t.equal(parseIPv4(bad), null, bad);
});

t.test('IPv6 parsing', async (t) => {
  t.same(parseIPv6('::1'), [...Array(15).fill(0), 1]);
  t.same(parseIPv6('[::ffff:127.0.0.1]'), [...Array(10).fill(0), 255, 255, 127, 0, 0, 1]);
  t.same(parseIPv6('fe80::1%eth0')?.slice(0, 2), [0xfe, 0x80]);
  t.equal(parseIPv6('1.2.3.4'), null);
  t.equal(parseIPv6('not:an:address'), null);
});

t.test('forbidden addresses', async (t) => {
  const forbidden = [
    '127.0.0.1',
    '127.255.255.254',
    '2130706433',
    '0x7f000001',
    '0177.0.0.1',
    '0.0.0.0',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '0xa9fea9fe',
    '100.64.0.1',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    '[::1]',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:0:127.0.0.1',
    '[::ffff:0:a9fe:a9fe]',
    '::ffff:169.254.169.254',
    '::127.0.0.1',
    '64:ff9b::a9fe:a9fe',
    '64:ff9b:1::a9fe:a9fe',
    '64:ff9b:1:a9fe:a9:fe00::',
    '2002:0a00:0001::1',
    'fc00::1',
    'fd00:ec2::254',
    'fe80::1',
    'fe80::1%lo',
    'ff02::1',
    '2001:db8::1',
    // Teredo (server 65.54.227.120, client 192.0.2.45 obfuscated), benchmarking, ORCHIDv2
    '2001:0:4136:e378:8000:63bf:3fff:fdd2',
    '2001:2::1',
    '2001:20::1',
  ];
  for (const address of forbidden) t.not(forbiddenAddressReason(address), null, address);
  const allowed = [
    '8.8.8.8',
    '172.32.0.1',
    '172.15.255.255',
    '192.169.0.1',
    '100.128.0.1',
    '1.1.1.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:0808:0808::1',
    '2001:200::1',
    '2001:4860:4860::8888',
    'hooks.example.com',
  ];
  for (const address of allowed) t.equal(forbiddenAddressReason(address), null, address);
  t.equal(forbiddenAddressReason('169.254.169.254'), 'link-local (cloud metadata)');
});

t.test('forbidden host names', async (t) => {
  for (const host of ['localhost', 'LOCALHOST.', 'api.localhost', 'metadata.google.internal'])
    t.not(forbiddenHostReason(host), null, host);
  t.equal(forbiddenHostReason('hooks.example.com'), null);
});

t.test('webhook URLs at rule creation', async (t) => {
  for (const [url, allowPrivate, problem] of [
    ['https://hooks.example.com/wharf', false, null],
    ['http://127.0.0.1:9000/hook', false, /loopback/],
    ['http://2130706433/hook', false, /loopback/],
    ['http://0x7f.1/hook', false, /loopback/],
    ['http://[::1]:8080/', false, /loopback/],
    ['http://[::ffff:169.254.169.254]/', false, /link-local/],
    ['http://169.254.169.254/latest/meta-data', false, /metadata/],
    ['http://localhost:3000/', false, /local/],
    ['http://10.0.0.5/', false, /private/],
    ['http://127.0.0.1:9000/hook', true, null],
    ['ftp://hooks.example.com/', false, /http/],
    ['https://user:pw@hooks.example.com/', false, /credentials/],
    ['not a url', false, /URL/],
  ] as const) {
    const found = webhookUrlProblem(url, allowPrivate);
    if (problem === null) t.equal(found, null, url);
    else t.match(found, problem, url);
  }
});
