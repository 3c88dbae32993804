import { createHmac } from 'node:crypto';
import t from 'tap';
import { signWebhook, verifyWebhookSignature } from '../../src/alarms/index.js';

t.test('Stripe-style signature over timestamp and body', async (t) => {
  const body = '{"rule":"r","state":"firing"}';
  const header = signWebhook('s3cret', 1_700_000_000, body);
  const mac = createHmac('sha256', 's3cret').update(`1700000000.${body}`).digest('hex');
  t.equal(header, `t=1700000000,v1=${mac}`);
  const now = 1_700_000_000_000;
  t.ok(verifyWebhookSignature('s3cret', header, body, 300, now));
  t.notOk(verifyWebhookSignature('other', header, body, 300, now), 'another secret');
  t.notOk(verifyWebhookSignature('s3cret', header, `${body} `, 300, now), 'another body');
  t.notOk(verifyWebhookSignature('s3cret', header, body, 300, now + 301_000), 'a replay');
  t.notOk(verifyWebhookSignature('s3cret', 'garbage', body, 300, now));
  t.ok(
    verifyWebhookSignature('s3cret', `t=1700000000,v1=00,v1=${mac}`, body, 300, now),
    'any v1 may match (secret rotation)',
  );
});
