// DroppedGroups: the incarnation of a dropped group is refused, another incarnation of the name
// is not, and the record is bounded (the oldest drop forgotten first).
import t from 'tap';
import { DroppedGroups } from '../../src/broker/dropped-groups.js';
import { groupOf } from '../helpers/broker.js';

t.test('a dropped incarnation is refused, a new one of the name is not', async (t) => {
  const dropped = new DroppedGroups();
  const group = groupOf({ incarnation: 'first' });
  dropped.check(group); // nothing dropped yet
  dropped.add(group);
  t.throws(() => dropped.check(group), { code: 'GroupNotFound' });
  t.doesNotThrow(() => dropped.check({ ...group, incarnation: 'second' }), 'created again');
  t.doesNotThrow(() => dropped.check({ ...group, group: 'other' }), 'another name');
  dropped.add({ ...group, incarnation: 'second' });
  t.throws(() => dropped.check(group), { code: 'GroupNotFound' }, 'the first, still refused');
});

t.test('bounded: past its size the oldest drop is forgotten', async (t) => {
  const dropped = new DroppedGroups(2);
  const [a, b, c] = ['a', 'b', 'c'].map((name) => groupOf({ group: name, incarnation: 'x' }));
  dropped.add(a);
  dropped.add(b);
  dropped.add(a); // dropped again: now the newest
  dropped.add(c);
  t.throws(() => dropped.check(a), { code: 'GroupNotFound' });
  t.doesNotThrow(() => dropped.check(b), 'the oldest, forgotten');
  t.throws(() => dropped.check(c), { code: 'GroupNotFound' });
});
