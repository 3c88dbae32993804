// Golden bytes of what alarms send and store: the webhook body and signature, the queue job, the
// evaluation state and history events (test/fixtures/alarm-formats-v1.json).
import { readFileSync } from 'node:fs';
import t from 'tap';
import {
  decodeNotificationJob,
  notificationJobId,
  signWebhook,
  verifyWebhookSignature,
  webhookPayload,
} from '../../src/alarms/index.js';
import { guardedLookup, postWebhook, WebhookError } from '../../src/alarms/webhook-sender.js';
import { ALARM_EVENT, ALARM_STATE, decodeRecord, encodeRecord } from '../../src/meta/records.js';

const golden = JSON.parse(readFileSync('test/fixtures/alarm-formats-v1.json', 'utf8'));

t.test('the webhook body and signature are the recorded bytes', async (t) => {
  const body = JSON.stringify(webhookPayload(golden.alarm, 'firing', 1532, 1764782999412, 1));
  t.equal(body, golden.webhook.body);
  const { secret, timestampSeconds, signature } = golden.webhook;
  t.equal(signWebhook(secret, timestampSeconds, body), signature);
  t.ok(verifyWebhookSignature(secret, signature, body, 300, timestampSeconds * 1000));
});

t.test('the queue job decodes from its recorded JSON; anything else is refused', async (t) => {
  const job = decodeNotificationJob(JSON.parse(golden.job.text));
  t.same(job, golden.job.value);
  t.equal(JSON.stringify(job), golden.job.text);
  t.equal(notificationJobId(job!), golden.job.jobId);
  t.notMatch(golden.job.jobId, /:/, 'BullMQ refuses custom ids with ":"');
  for (const bad of [
    null,
    'x',
    { ...golden.job.value, v: 2 },
    { ...golden.job.value, seq: 1.5 },
    { ...golden.job.value, body: 3 },
    { ...golden.job.value, alarmId: undefined },
  ]) {
    t.equal(decodeNotificationJob(bad), null);
  }
});

t.test('state and history records', async (t) => {
  const at = { key: 'k', field: 'f' };
  t.equal(encodeRecord(golden.state.value), golden.state.text);
  t.same(decodeRecord(ALARM_STATE, golden.state.text, at), golden.state.value);
  for (const event of golden.events) {
    t.equal(encodeRecord(event.value), event.text);
    t.same(decodeRecord(ALARM_EVENT, event.text, at), event.value);
  }
  t.throws(() =>
    decodeRecord(ALARM_STATE, '{"v":1,"state":"boom","sinceMs":0,"seq":0,"value":0}', at),
  );
  t.throws(() => decodeRecord(ALARM_EVENT, '{"v":2,"type":"fired","time":0,"seq":1}', at));
});

t.test('delivery refuses a name that resolves to a forbidden address', async (t) => {
  const refused = await new Promise<Error | null>((resolve) =>
    guardedLookup('localhost', {}, (err) => resolve(err)),
  );
  t.ok(refused instanceof WebhookError && refused.permanent, 'localhost resolves to loopback');
  const literal = await postWebhook({
    url: 'http://0x7f.1:9/hook',
    body: '{}',
    secret: 's',
    timeoutMs: 1000,
    allowPrivate: false,
  }).catch((err: unknown) => err);
  t.ok(literal instanceof WebhookError && literal.permanent, 'an address literal, any spelling');
});
