// The tag matcher: the consume-queue entry's tag hash first, then the record's own tag bytes.
import t from 'tap';
import { encodeMessage, measureMessage, tagHash } from '../../../src/store/record.js';
import type { AppendMessage } from '../../../src/store/index.js';
import { TagMatcher } from '../../../src/store/tag-matcher.js';

/** A record of `m` encoded at buf[pos] of a larger buffer; returns the buffer. */
function record(m: AppendMessage, pos = 0): Buffer {
  const size = measureMessage(m) as number;
  const buf = Buffer.alloc(pos + size + 7, 0xee);
  encodeMessage(buf, pos, size, m, { logOffset: 0, queueOffset: 0, storeTimestampMs: 1 });
  return buf;
}

const msg = (tag?: string): AppendMessage => ({
  topic: 'orders',
  queueId: 0,
  body: Buffer.from('x'),
  bornTimestampMs: 1,
  ...(tag === undefined ? {} : { tag }),
});

t.test('an entry hash passes only when it is a wanted tag hash', async (t) => {
  const matcher = new TagMatcher(new Set(['a', 'ü']));
  t.ok(matcher.mayMatch(tagHash('a')));
  t.ok(matcher.mayMatch(tagHash('ü')), 'UTF-8 tags hash like the record codec');
  t.notOk(matcher.mayMatch(tagHash('b')));
  t.notOk(matcher.mayMatch(0), 'a message without a tag is not wanted');
  t.same([...matcher.hashes].sort(), [tagHash('a'), tagHash('ü')].sort());
});

t.test('the record tag decides after a hash match, wherever the record sits', async (t) => {
  const matcher = new TagMatcher(new Set(['a', 'bb']));
  t.ok(matcher.matches(record(msg('a')), 0, tagHash('a')));
  t.ok(matcher.matches(record(msg('bb'), 33), 33, tagHash('bb')));
  // A record whose entry claims a wanted hash but whose tag differs (a hash collision): no match.
  t.notOk(matcher.matches(record(msg('c')), 0, tagHash('a')));
  t.notOk(matcher.matches(record(msg('ab')), 0, tagHash('a')), 'a longer tag sharing a prefix');
  t.notOk(matcher.matches(record(msg()), 0, tagHash('a')), 'a record without a tag');
  t.notOk(matcher.matches(record(msg('a')), 0, tagHash('zz')), 'a hash not wanted at all');
});

t.test('the empty tag selects messages without a tag', async (t) => {
  const matcher = new TagMatcher(new Set(['']));
  t.ok(matcher.mayMatch(0));
  t.ok(matcher.matches(record(msg()), 0, 0));
  t.ok(matcher.matches(record(msg('')), 0, 0));
  t.notOk(matcher.mayMatch(tagHash('a')));
});
