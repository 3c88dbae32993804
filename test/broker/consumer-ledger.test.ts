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
