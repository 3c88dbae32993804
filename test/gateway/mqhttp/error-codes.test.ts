import t from 'tap';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, WharfError, type ErrorCode } from '../../../src/errors.js';
import {
  MQ_ERROR_CODES,
  MQ_ERROR_STATUS,
  mqErrorOf,
  mqRefusal,
} from '../../../src/gateway/mqhttp/error-codes.js';

const doc = readFileSync(new URL('../../../docs/MQHTTP.md', import.meta.url), 'utf8');

t.test('the MQ code table and docs/MQHTTP.md §6 agree', async (t) => {
  const section = doc.slice(doc.indexOf('## 6. Errors'), doc.indexOf('## 7.'));
  const documented = new Map<string, number>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !cells[1].startsWith('`')) continue;
    const codes = [...cells[1].matchAll(/`(\w+)`/g)].map((m) => m[1]);
    const statuses = cells[2].split(',').map((s) => Number(s.trim()));
    codes.forEach((code, i) => documented.set(code, statuses[Math.min(i, statuses.length - 1)]));
  }
  t.same(
    Object.fromEntries([...documented].sort()),
    Object.fromEntries(Object.entries(MQ_ERROR_STATUS).sort()),
  );
});

t.test('every Wharf code answers a documented MQ code', async (t) => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    t.ok(Object.hasOwn(MQ_ERROR_STATUS, MQ_ERROR_CODES[code]), code);
  }
  t.same(mqErrorOf(new WharfError('TopicNotFound', 'x')), { code: 'TopicNotExist', status: 404 });
  t.same(mqErrorOf(new WharfError('RequestExpired', 'x')), { code: 'TimeExpired', status: 408 });
  t.same(mqErrorOf(mqRefusal('InvalidArgument', 'InvalidDigest', 'x')), {
    code: 'InvalidDigest',
    status: 400,
  });
  t.same(
    mqErrorOf(new WharfError('InvalidArgument', 'x', { details: { mqCode: 'NoSuchCode' } })),
    { code: 'InvalidArgument', status: 400 },
    'an unknown refinement falls back to the table',
  );
});
