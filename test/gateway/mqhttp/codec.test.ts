import t from 'tap';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { WharfError } from '../../../src/errors.js';
import { formatProperties, parseProperties } from '../../../src/gateway/mqhttp/properties.js';
import {
  mqAuthorization,
  mqContentMd5,
  parseMqAuthorization,
  signaturesEqual,
  signedResource,
  stringToSign,
  type MqSignedRequest,
} from '../../../src/gateway/mqhttp/signature.js';
import {
  decodePublishRequest,
  decodeReceiptHandles,
  encodeError,
  encodeHandleErrors,
  encodeMessages,
  encodePublishAnswer,
  xmlText,
  type HandleError,
  type MqErrorAnswer,
  type MqMessage,
  type PublishAnswer,
} from '../../../src/gateway/mqhttp/xml-codec.js';

interface Golden {
  accessKeyId: string;
  accessKeySecret: string;
  signatures: {
    name: string;
    request: MqSignedRequest;
    stringToSign: string;
    authorization: string;
  }[];
  contentMd5: { body: string; header: string };
  requests: Record<string, { xml: string; decoded: unknown }>;
  answers: {
    publish: { value: PublishAnswer; xml: string };
    publishHalf: { value: PublishAnswer; xml: string };
    messages: { value: MqMessage[]; xml: string };
    error: { value: MqErrorAnswer; xml: string };
    errors: { value: HandleError[]; xml: string };
  };
}

const golden = JSON.parse(
  readFileSync(new URL('../../fixtures/mqhttp-v1.json', import.meta.url), 'utf8'),
) as Golden;

function mqCodeOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    if (err instanceof WharfError) return err.details?.mqCode ?? err.code;
    throw err;
  }
  return 'no error';
}

t.test('signatures are the SDK’s, byte for byte (golden)', async (t) => {
  for (const c of golden.signatures) {
    t.equal(stringToSign(c.request), c.stringToSign, `${c.name}: string to sign`);
    t.equal(
      mqAuthorization(golden.accessKeyId, golden.accessKeySecret, c.request),
      c.authorization,
      `${c.name}: authorization`,
    );
  }
  t.equal(mqContentMd5(Buffer.from(golden.contentMd5.body)), golden.contentMd5.header);
  t.equal(golden.contentMd5.header.length, 44, 'base64 of the hex digest, not of the bytes');
});

t.test('the authorization header and the signed resource', async (t) => {
  t.same(parseMqAuthorization('MQ AK1:B6omLVt94d5AHtWmZ7uaPojCSio='), {
    accessKeyId: 'AK1',
    signature: 'B6omLVt94d5AHtWmZ7uaPojCSio=',
  });
  for (const bad of ['', 'MQ ', 'MQ AK1', 'MQ AK1:', 'AWS AK1:abc=', 'MQ A K:abc', 'MQ AK1:a b'])
    t.equal(parseMqAuthorization(bad), null, `refused: ${JSON.stringify(bad)}`);
  t.equal(signedResource('/topics/a/messages?ns=i'), '/topics/a/messages?ns=i');
  t.equal(signedResource('//topics/a/messages?ns=i'), '/topics/a/messages?ns=i');
  t.equal(signedResource('/prefix/topics/a/messages'), '/topics/a/messages');
  t.ok(signaturesEqual('abc=', 'abc='));
  t.notOk(signaturesEqual('abc=', 'abd='));
  t.notOk(signaturesEqual('abc=', 'abc'));
});

t.test('requests decode as the golden values (CDATA, escapes, whitespace, handles)', async (t) => {
  for (const [name, c] of Object.entries(golden.requests)) {
    const raw = Buffer.from(c.xml);
    const decoded = name.startsWith('ack') ? decodeReceiptHandles(raw) : decodePublishRequest(raw);
    t.same(decoded, c.decoded, name);
  }
  t.same(
    decodePublishRequest(Buffer.from('<Message><MessageBody>0012</MessageBody></Message>')),
    { body: '0012' },
    'values are kept verbatim, never numbers',
  );
  t.same(
    decodePublishRequest(
      Buffer.from(
        '<Message><MessageBody>&#9;&#xA;&#13;&#x20;&#xFFFD;&#x1F600;</MessageBody></Message>',
      ),
    ),
    { body: '\t\n\r \ufffd\u{1f600}' },
    'references to allowed characters decode',
  );
  t.same(
    decodePublishRequest(
      Buffer.from('<Message><MessageBody><![CDATA[x &#0; y]]></MessageBody></Message>'),
    ),
    { body: 'x &#0; y' },
    'inside CDATA a reference is text',
  );
  t.same(
    decodePublishRequest(
      Buffer.from(
        '<Message><MessageBody><![CDATA[<!DOCTYPE html><html><body>hi</body></html>]]>' +
          '</MessageBody><MessageTag><![CDATA[see <!doctype> here]]></MessageTag></Message>',
      ),
    ),
    { body: '<!DOCTYPE html><html><body>hi</body></html>', tag: 'see <!doctype> here' },
    'inside CDATA a DOCTYPE is text (an HTML page the Node SDK sends)',
  );
  t.same(
    decodePublishRequest(
      Buffer.from(
        '<m:Message xmlns:m="x"><m:MessageTag>T</m:MessageTag><m:MessageBody/></m:Message>',
      ),
    ),
    { body: '', tag: 'T' },
    'namespace prefixes and element order are ignored',
  );
});

t.test('bad request bodies are MalformedXML or InvalidArgument, never a crash', async (t) => {
  const cases: [string, string][] = [
    ['', 'MalformedXML'],
    ['not xml', 'MalformedXML'],
    ['<Message><MessageBody>x</MessageBody>', 'MalformedXML'],
    ['<Other><MessageBody>x</MessageBody></Other>', 'MalformedXML'],
    [
      '<!DOCTYPE m [<!ENTITY a "b">]><Message><MessageBody>&a;</MessageBody></Message>',
      'MalformedXML',
    ],
    [`<Message>${'<a>'.repeat(200)}${'</a>'.repeat(200)}</Message>`, 'MalformedXML'],
    ['<Message><MessageBody><![CDATA[a]]>b]]></MessageBody></Message>', 'MalformedXML'],
    // a CDATA opening inside a comment (or a PI) opens nothing: what follows is still looked at
    [
      '<!-- <![CDATA[ --><!DOCTYPE Message [<!ENTITY e "X">]><Message><MessageBody>a&e;b' +
        '</MessageBody></Message><!-- ]]> -->',
      'MalformedXML',
    ],
    [
      '<?pi <![CDATA[ ?><!DOCTYPE Message [<!ENTITY e "X">]><Message><MessageBody>&e;' +
        '</MessageBody></Message><?pi ]]> ?>',
      'MalformedXML',
    ],
    // control characters XML 1.0 forbids, referenced or written (the parser dropped references)
    ['<Message><MessageBody>&#0;</MessageBody></Message>', 'MalformedXML'],
    ['<Message><MessageBody>a&#1;b</MessageBody></Message>', 'MalformedXML'],
    ['<Message><MessageBody>a&#x1F;b</MessageBody></Message>', 'MalformedXML'],
    ['<Message><MessageBody>&#xD800;</MessageBody></Message>', 'MalformedXML'],
    ['<Message><MessageBody>&#x110000;</MessageBody></Message>', 'MalformedXML'],
    ['<Message><MessageBody>a\u0001b</MessageBody></Message>', 'MalformedXML'],
    ['<Message><MessageBody><![CDATA[a\u0002b]]></MessageBody></Message>', 'MalformedXML'],
    ['<Message><MessageTag>T</MessageTag></Message>', 'InvalidArgument'],
    ['<Message><MessageBody><x>1</x></MessageBody></Message>', 'InvalidArgument'],
    [
      '<Message><MessageBody>a</MessageBody><MessageBody>b</MessageBody></Message>',
      'InvalidArgument',
    ],
  ];
  for (const [xml, code] of cases) {
    t.equal(
      mqCodeOf(() => decodePublishRequest(Buffer.from(xml))),
      code,
      xml.slice(0, 60),
    );
  }
  const handles = (n: number) =>
    `<ReceiptHandles>${'<ReceiptHandle>h</ReceiptHandle>'.repeat(n)}</ReceiptHandles>`;
  t.equal(
    mqCodeOf(() => decodeReceiptHandles(Buffer.from(handles(0)))),
    'InvalidArgument',
  );
  t.equal(
    mqCodeOf(() => decodeReceiptHandles(Buffer.from(handles(17)))),
    'InvalidArgument',
  );
  t.equal(decodeReceiptHandles(Buffer.from(handles(16))).length, 16);
  t.equal(
    mqCodeOf(() =>
      decodeReceiptHandles(
        Buffer.from('<ReceiptHandles><ReceiptHandle> </ReceiptHandle></ReceiptHandles>'),
      ),
    ),
    'InvalidArgument',
  );
  // megabytes of markup are refused before they are checked (the check would hold the event loop
  // for seconds), and no error repeats the validator's list of open tags
  for (const xml of [
    `<Message>${'<a>'.repeat(2_500_000)}`,
    `<Message>${'<a></a>'.repeat(1_000_000)}</Message>`,
    `<Message>${'<a>'.repeat(600)}`,
    // unclosed CDATA openings: each one scanned to the end would be quadratic in the body
    `<Message><MessageBody>${'<![CDATA['.repeat(800_000)}</MessageBody></Message>`,
  ]) {
    let message = '';
    const code = mqCodeOf(() => {
      try {
        decodePublishRequest(Buffer.from(xml));
      } catch (err) {
        message = err instanceof Error ? err.message : '';
        throw err;
      }
    });
    t.equal(code, 'MalformedXML', `${xml.length} chars of tags`);
    t.ok(message.length < 300, `a short reason: ${message.length} chars`);
  }
  // every truncation of a valid body is refused cleanly
  const whole = golden.requests.publish.xml;
  for (let n = 0; n < whole.length; n++) {
    const code = mqCodeOf(() => decodePublishRequest(Buffer.from(whole.slice(0, n))));
    if (code !== 'MalformedXML' && code !== 'InvalidArgument')
      t.fail(`cut at ${n}: ${String(code)}`);
  }
});

t.test('answers are the golden bytes', async (t) => {
  const a = golden.answers;
  t.equal(encodePublishAnswer(a.publish.value), a.publish.xml);
  t.equal(encodePublishAnswer(a.publishHalf.value), a.publishHalf.xml);
  t.equal(encodeMessages(a.messages.value), a.messages.xml);
  t.equal(encodeError(a.error.value), a.error.xml);
  t.equal(encodeHandleErrors(a.errors.value), a.errors.xml);
  t.throws(() => encodeMessages([]), 'never an empty Messages');
  t.equal(xmlText('a\u0000b\uD800c\t\n'), 'a\uFFFDb\uFFFDc\t\n');
});

t.test('a carriage return in a consumed body reaches the SDK as a carriage return', async (t) => {
  const body = 'line1\r\nline2\rend';
  const xml = encodeMessages([
    {
      messageId: 'M',
      receiptHandle: 'H',
      body,
      bodyMd5: 'X',
      publishTime: 1,
      firstConsumeTime: 2,
      nextConsumeTime: 3,
      consumedTimes: 1,
    },
  ]);
  t.notOk(xml.includes('\r'), 'no raw CR: an XML parser reads it as a line feed');
  // the SDK's own parser (xml2js, untyped)
  const xml2js = createRequire(import.meta.url)('xml2js') as {
    parseStringPromise(xml: string): Promise<unknown>;
  };
  const parsed = (await xml2js.parseStringPromise(xml)) as {
    Messages: { Message: { MessageBody: string[] }[] };
  };
  t.equal(parsed.Messages.Message[0].MessageBody[0], body);
});

t.test('properties: reserved keys out, user pairs kept, unsendable left out', async (t) => {
  t.same(
    parseProperties('a:1|KEYS:k1 k2|__SHARDINGKEY:s|__STARTDELIVERTIME:1764057600000|x:y:z|'),
    {
      user: { a: '1', x: 'y:z' },
      keys: ['k1', 'k2'],
      shardingKey: 's',
      startDeliverTimeMs: 1764057600000,
    },
  );
  t.same(parseProperties('__TransCheckT:10'), { user: {}, transCheckSeconds: 10 });
  t.same(parseProperties(undefined), { user: {} });
  for (const bad of ['novalue', ':v', '__STARTDELIVERTIME:soon', '__TransCheckT:-1', 'a:1|a:2'])
    t.equal(
      mqCodeOf(() => parseProperties(bad)),
      'InvalidArgument',
      bad,
    );
  t.equal(
    formatProperties({
      keys: ['k1', 'k:2', 'k 3', 'k4'],
      shardingKey: 's',
      properties: { a: '1', 'b|c': 'd', e: 'f:g', h: '' },
    }),
    // KEYS is space-separated: a key holding a space would read as two
    'a:1|KEYS:k1 k4|__SHARDINGKEY:s',
  );
  t.equal(formatProperties({ keys: [], shardingKey: null, properties: {} }), undefined);
  // a /v1 user property named like a reserved key would read as the message's keys, sharding
  // key, deliver time or check time in the SDK: it is left out
  t.equal(
    formatProperties({
      keys: [],
      shardingKey: null,
      properties: {
        KEYS: 'fake',
        __SHARDINGKEY: 'fake',
        __STARTDELIVERTIME: '7',
        __TransCheckT: '7',
        user: 'kept',
      },
    }),
    'user:kept',
  );
});
