// The floor of bench:e2e's `http-floor` row: the routes the Wharf HTTP driver calls, served by a
// bare node:http server over an in-memory list per group — no authentication (the Authorization
// header is ignored), no schema, no store, no fsync, no tracking of what is in flight. Requests
// are read and JSON-parsed and answers JSON-serialized in the shapes Wharf answers (a received
// message carries the same fields, a receipt handle of the same length), so the row shows what
// the load process, the HTTP calls and the loopback sockets cost on this machine by themselves:
// what no server speaking this API over HTTP/1.1 from Node can beat here. Run as its own process
// (`node dist/scripts/bench/lib/http-floor-server.js`); it prints its port, then serves until
// killed.
import http from 'node:http';

interface Stored {
  body: string;
  bodyEncoding: string;
  publishTime: number;
}

interface Group {
  messages: Stored[];
  /** Index of the next message to hand out (the list is compacted as it drains). */
  head: number;
  /** Parked receives, woken by a publish. */
  waiters: (() => void)[];
}

/** topic → group → its list: a publish appends to every group of the topic. */
const topics = new Map<string, Map<string, Group>>();
let nextId = 0;

const RECEIPT_HANDLE_PAD = 'x'.repeat(96);
const PUBLISH = /^\/v1\/instances\/[^/]+\/topics\/([^/]+)\/messages$/;
const RECEIVE = /^\/v1\/instances\/[^/]+\/topics\/([^/]+)\/groups\/([^/]+)\/receive$/;
const ACK = /^\/v1\/instances\/[^/]+\/topics\/[^/]+\/groups\/[^/]+\/ack$/;
const GROUP = /^\/v1\/instances\/[^/]+\/groups\/([^/]+)$/;

function groupOf(topic: string, group: string): Group {
  let byGroup = topics.get(topic);
  if (byGroup === undefined) topics.set(topic, (byGroup = new Map()));
  let found = byGroup.get(group);
  if (found === undefined) byGroup.set(group, (found = { messages: [], head: 0, waiters: [] }));
  return found;
}

function answer(res: http.ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function publish(topic: string, body: { messages: { body: string; bodyEncoding?: string }[] }) {
  const now = Date.now();
  const byGroup = topics.get(topic);
  const ids = body.messages.map((message) => {
    const id = (nextId++).toString(16).toUpperCase().padStart(32, '0');
    const stored = {
      body: message.body,
      bodyEncoding: message.bodyEncoding ?? 'utf8',
      publishTime: now,
    };
    for (const group of byGroup?.values() ?? []) group.messages.push(stored);
    return { messageId: id, queueId: 0, bodyMd5: '0'.repeat(32) };
  });
  for (const group of byGroup?.values() ?? []) for (const wake of group.waiters.splice(0)) wake();
  return { messages: ids };
}

function take(group: Group, max: number) {
  const now = Date.now();
  const out = [];
  while (out.length < max && group.head < group.messages.length) {
    const stored = group.messages[group.head++];
    const id = (nextId++).toString(16).toUpperCase().padStart(32, '0');
    out.push({
      messageId: id,
      receiptHandle: `${id}${RECEIPT_HANDLE_PAD}`,
      body: stored.body,
      bodyEncoding: stored.bodyEncoding,
      tag: '',
      keys: [],
      properties: {},
      shardingKey: '',
      queueId: 0,
      queueOffset: group.head - 1,
      publishTime: stored.publishTime,
      firstDeliveryTime: now,
      deliveryAttempt: 1,
      nextVisibleTime: now + 60_000,
    });
  }
  if (group.head > 65_536 && group.head * 2 > group.messages.length) {
    group.messages = group.messages.slice(group.head);
    group.head = 0;
  }
  return out;
}

async function receive(group: Group, body: { maxMessages?: number; waitSeconds?: number }) {
  const max = body.maxMessages ?? 16;
  let messages = take(group, max);
  if (messages.length === 0 && (body.waitSeconds ?? 0) > 0) {
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      // a wait that ran out leaves the list (a drain publishes nothing to clear it)
      const timer = setTimeout(
        () => {
          group.waiters.splice(group.waiters.indexOf(wake), 1); // still there: a wake clears the timer
          resolve();
        },
        (body.waitSeconds ?? 0) * 1000,
      );
      group.waiters.push(wake);
    });
    messages = take(group, max);
  }
  return { messages };
}

function route(
  method: string,
  path: string,
  body: unknown,
): Promise<[number, unknown]> | [number, unknown] {
  let m: RegExpExecArray | null;
  if (method === 'POST' && (m = PUBLISH.exec(path)) !== null)
    return [200, publish(m[1], body as Parameters<typeof publish>[1])];
  if (method === 'POST' && (m = RECEIVE.exec(path)) !== null) {
    const [, topic, group] = m;
    return receive(groupOf(topic, group), body as Parameters<typeof receive>[1]).then((a) => [
      200,
      a,
    ]);
  }
  if (method === 'POST' && ACK.test(path)) {
    const handles = (body as { receiptHandles: string[] }).receiptHandles;
    return [200, { results: handles.map((receiptHandle) => ({ receiptHandle, ok: true })) }];
  }
  if (method === 'PUT' && (m = GROUP.exec(path)) !== null) {
    // a group takes what every topic stores from now on (the driver makes its groups per run)
    for (const topic of topics.keys()) groupOf(topic, m[1]);
    return [200, {}];
  }
  if (method === 'PUT' && path.includes('/topics/')) {
    const topic = path.slice(path.lastIndexOf('/') + 1);
    if (!topics.has(topic)) topics.set(topic, new Map());
    return [200, {}];
  }
  if (method === 'DELETE') return [204, undefined];
  return [404, { code: 'NotFound', message: `${method} ${path}` }];
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString();
    void Promise.resolve()
      .then(() =>
        route(req.method ?? 'GET', req.url ?? '/', text === '' ? undefined : JSON.parse(text)),
      )
      .then(
        ([status, body]) => answer(res, status, body),
        (error: Error) => answer(res, 400, { code: 'InvalidArgument', message: error.message }),
      );
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : ''}\n`);
});
