// Frame placement in the segment list: where frames go, when a segment rolls, and the blank frame
// that fills the rest of a segment.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { offsetFileName } from '../../../src/store/file-io.js';
import { BLANK_FRAME_BYTES, checkFrame } from '../../../src/store/record.js';
import { SegmentList, type LogChunk } from '../../../src/store/segment-list.js';

t.test('frames go where the log ends while they fit', async (t) => {
  const list = new SegmentList('/nowhere', 1000);
  const blanks: LogChunk[] = [];
  t.equal(list.minLogOffset, 0, 'an empty list starts at its end');
  const a = list.place(100, blanks);
  const b = list.place(200, blanks);
  t.equal(a.logOffset, 0);
  t.equal(b.logOffset, 100);
  t.equal(a.segment, b.segment);
  t.equal(list.endLogOffset, 300);
  t.equal(blanks.length, 0);
  t.equal(list.segments.length, 1);
  t.notOk(a.segment.created, 'placing does not create the file (the group commit does)');
});

t.test('a frame that does not fit rolls the segment behind a blank frame', async (t) => {
  const list = new SegmentList('/nowhere', 1000);
  const blanks: LogChunk[] = [];
  list.place(900, blanks);
  const next = list.place(200, blanks);
  t.equal(blanks.length, 1, 'one blank frame');
  const blank = blanks[0];
  t.equal(blank.logOffset, 900);
  t.equal(blank.buffer.length, BLANK_FRAME_BYTES);
  t.same(checkFrame(blank.buffer, 0, blank.buffer.length, 900), {
    status: 'ok',
    kind: 'blank',
    length: 100,
  });
  t.equal(next.logOffset, 1000, 'the frame starts the next segment');
  t.equal(next.segment.startLogOffset, 1000);
  t.equal(list.segments.length, 2);
  t.equal(list.endLogOffset, 1200);
});

t.test(
  'a frame filling the segment exactly needs no blank; less than a blank of room rolls',
  async (t) => {
    const list = new SegmentList('/nowhere', 1000);
    const blanks: LogChunk[] = [];
    list.place(600, blanks);
    const exact = list.place(400, blanks);
    t.equal(exact.logOffset, 600, 'size === room fits');
    t.equal(blanks.length, 0);
    // A frame that would leave less than a blank frame's room cannot stay: the segment rolls.
    const list2 = new SegmentList('/nowhere', 1000);
    list2.place(600, blanks);
    const rolled = list2.place(400 - BLANK_FRAME_BYTES + 1, blanks);
    t.equal(rolled.logOffset, 1000);
    t.equal(blanks.length, 1, 'the blank frame fills the 400 bytes left');
    t.equal(blanks[0].logOffset, 600);
  },
);

t.test('lookups: the segment holding a position, its index and the next start', async (t) => {
  const list = new SegmentList('/nowhere', 1000);
  const blanks: LogChunk[] = [];
  for (let i = 0; i < 5; i++) list.place(700, blanks);
  t.same(
    list.segments.map((s) => s.startLogOffset),
    [0, 1000, 2000, 3000, 4000],
  );
  t.equal(list.indexOf(0), 0);
  t.equal(list.indexOf(1999), 1);
  t.equal(list.indexOf(4999), 4);
  t.equal(list.find(2500)?.startLogOffset, 2000);
  t.equal(list.nextStart(list.segments[1]), 2000);
  t.equal(list.nextStart(list.segments[4]), undefined, 'the last segment has no next');
  t.equal(list.shift()?.startLogOffset, 0);
  t.equal(list.minLogOffset, 1000, 'the log starts at its first segment');
  t.equal(list.indexOf(500), -1, 'below the first segment');
  t.equal(list.find(500), undefined);
});

t.test('load lists the segment files in order and ignores other names', async (t) => {
  const dir = t.testdir();
  mkdirSync(dir, { recursive: true });
  for (const start of [2048, 0, 1024]) writeFileSync(`${dir}/${offsetFileName(start)}`, '');
  writeFileSync(`${dir}/notes.txt`, '');
  const list = new SegmentList(dir, 1024);
  await list.load();
  t.same(
    list.segments.map((s) => [s.startLogOffset, s.created]),
    [
      [0, true],
      [1024, true],
      [2048, true],
    ],
  );
});
