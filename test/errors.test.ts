import t from 'tap';
import { ERROR_CODES, WharfError, isWharfError } from '../src/errors.js';

t.test('a WharfError carries its code, retriable flag, cause and retry hint', async (t) => {
  const cause = new Error('disk');
  const err = new WharfError('DiskFull', 'no space', {
    cause,
    retryAfterMs: 1000,
    details: { freeBytes: 1 },
  });
  t.equal(err.code, 'DiskFull');
  t.equal(err.retriable, true);
  t.equal(err.cause, cause);
  t.equal(err.retryAfterMs, 1000);
  t.same(err.details, { freeBytes: 1 });
  t.ok(isWharfError(err));
  t.ok(isWharfError(err, 'DiskFull'));
  t.notOk(isWharfError(err, 'Throttled'));
  t.notOk(isWharfError(new Error('x')));
  t.equal(new WharfError('InvalidArgument', 'bad').cause, undefined);
});

t.test('every code has a description and a boolean retriable flag', async (t) => {
  for (const [code, entry] of Object.entries(ERROR_CODES)) {
    t.type(entry.retriable, 'boolean', code);
    t.ok(entry.description.length > 0, code);
  }
});
