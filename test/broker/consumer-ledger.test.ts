import t from 'tap';
import { ConsumerLedger } from '../../src/broker/consumer-ledger.js';

t.test(
  'a re-send journaled past a lost dead-letter tail is forgotten, done ranges or not',
  async (t) => {
    // restored from a snapshot: the group is re-sending offsets 1 and 5, with no done ranges
    const ledger = new ConsumerLedger();
    ledger.restore({ v: 1, subs: [], slots: [], dlq: [], dlqResending: [['t/i/g', [1, 5]]] });
    t.same([...ledger.deadLettersBeingResent('t/i/g')].sort(), [1, 5]);
    // the dead-letter queue ends at 3 after the crash: 5 is gone, 1 is still to finish
    t.equal(
      ledger.trimDeadLettersDone(() => ({ minQueueOffset: 0, maxQueueOffset: 3 })),
      true,
    );
    t.same([...ledger.deadLettersBeingResent('t/i/g')], [1]);
    // trimmed at a snapshot (no end given): nothing past the end is looked at
    t.equal(
      ledger.trimDeadLettersDone(() => ({ minQueueOffset: 0 })),
      false,
    );
    t.same([...ledger.deadLettersBeingResent('t/i/g')], [1]);
  },
);

t.test(
  "an instance's names are every group and topic the ledger holds under it, no other's",
  async (t) => {
    const ledger = new ConsumerLedger();
    ledger.apply({ op: 'start', sub: 't/i/g\u0000t/i/topic\u00000', queue: 0, offset: 0 });
    ledger.apply({ op: 'slot', group: 't/i/broadcast', consumerId: 'c1', slot: 1 });
    ledger.apply({ op: 'dlqDone', group: 't/i/dead', offsets: [0] });
    // i10 begins with i: not under t/i/
    ledger.apply({ op: 'start', sub: 't/i10/g\u0000t/i10/topic\u00000', queue: 0, offset: 0 });
    const names = ledger.namesUnder('t/i/');
    t.same(names.groups.sort(), ['t/i/broadcast', 't/i/dead', 't/i/g']);
    t.same(names.topics, ['t/i/topic']);
    for (const group of names.groups) ledger.apply({ op: 'dropGroup', group });
    t.same(ledger.namesUnder('t/i/'), { groups: [], topics: [] }, 'dropping them leaves none');
    t.same(ledger.namesUnder('t/i10/').groups, ['t/i10/g'], "the other instance's stay");
  },
);
