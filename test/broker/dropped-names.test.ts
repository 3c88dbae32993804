// DroppedNames: the incarnation of a dropped group or topic is refused, another incarnation of
// the name is not, and the record is bounded (the oldest drop forgotten first).
import t from 'tap';
import { DroppedNames } from '../../src/broker/dropped-names.js';
import { groupOf, topicOf } from '../helpers/broker.js';

t.test('a dropped group incarnation is refused, a new one of the name is not', async (t) => {
  const dropped = new DroppedNames();
  const group = groupOf({ incarnation: 'first' });
  dropped.checkGroup(group); // nothing dropped yet
  dropped.addGroup(group);
  t.throws(() => dropped.checkGroup(group), { code: 'GroupNotFound' });
  t.doesNotThrow(() => dropped.checkGroup({ ...group, incarnation: 'second' }), 'created again');
  t.doesNotThrow(() => dropped.checkGroup({ ...group, group: 'other' }), 'another name');
  dropped.addGroup({ ...group, incarnation: 'second' });
  t.throws(() => dropped.checkGroup(group), { code: 'GroupNotFound' }, 'the first, still refused');
});

t.test('a dropped topic (by its createdAt) is refused, one created again is not', async (t) => {
  const dropped = new DroppedNames();
  const topic = topicOf();
  dropped.addTopic(topic);
  t.throws(() => dropped.checkTopic(topic), { code: 'TopicNotFound' });
  t.doesNotThrow(() => dropped.checkTopic({ ...topic, createdAt: topic.createdAt + 1 }));
  t.doesNotThrow(() => dropped.checkTopic({ ...topic, topic: 'other' }), 'another name');
  const sameName = groupOf({ group: topic.topic, createdAt: topic.createdAt });
  t.doesNotThrow(() => dropped.checkGroup(sameName), 'a group of the same name and time');
});

t.test('bounded: past its size the oldest drop is forgotten', async (t) => {
  const dropped = new DroppedNames(2);
  const [a, b, c] = ['a', 'b', 'c'].map((name) => groupOf({ group: name, incarnation: 'x' }));
  dropped.addGroup(a);
  dropped.addGroup(b);
  dropped.addGroup(a); // dropped again: now the newest
  dropped.addGroup(c);
  t.throws(() => dropped.checkGroup(a), { code: 'GroupNotFound' });
  t.doesNotThrow(() => dropped.checkGroup(b), 'the oldest, forgotten');
  t.throws(() => dropped.checkGroup(c), { code: 'GroupNotFound' });
});
