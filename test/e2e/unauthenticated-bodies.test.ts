// Memory exhaustion by unauthenticated bodies (issue #8, defect 4), caused for real: the
// all-in-one node runs as a child process (so its RSS is its own), and 50 raw sockets each send
// the headers of a near-8 MiB publish without valid credentials (no Authorization, an unknown
// access key, a date years off), then most of the body, then stall. The node must refuse them
// from the headers and not buffer their bodies: its peak RSS (VmHWM, reset just before the
// attack) may grow by less than 64 MiB. An authenticated large body still goes through.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { startTestRedis } from '../helpers/redis.js';
import { json, provisionTenant, signedFetch } from '../helpers/wharf.js';

const entry = join(import.meta.dirname, '../../src/cli/all-in-one.ts');
const MIB = 1024 * 1024;
const SOCKETS = 50;
const DECLARED_BYTES = 8 * MIB - 1024;
const SENT_BYTES = 7 * MIB;
const CHUNK_BYTES = 256 * 1024;

function memory(pid: number): { rssKiB: number; peakKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)![1]);
  return { rssKiB: field('VmRSS'), peakKiB: field('VmHWM') };
}

/** Resets VmHWM to the current RSS (clear_refs 5); false where the kernel refuses. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
}

/** The headers of one unauthenticated publish; three kinds of bad credentials in turn. */
function attackHead(i: number, port: number): string {
  const now = amzDate(Date.now());
  const fakeSignature = 'ab'.repeat(32);
  const credential = (date: string) =>
    `AWS4-HMAC-SHA256 Credential=WKAAAAAAAAAAAAAAAAAA/${date.slice(0, 8)}/local/mq/aws4_request, ` +
    `SignedHeaders=host;x-amz-date, Signature=${fakeSignature}`;
  const auth = [
    '',
    `authorization: ${credential(now)}\r\nx-amz-date: ${now}\r\n`,
    `authorization: ${credential('20100101T000000Z')}\r\nx-amz-date: 20100101T000000Z\r\n`,
  ][i % 3];
  return (
    `POST /v1/instances/MQ_INST_AAAAAAAAAAAAAAAAAAAA/topics/orders/messages HTTP/1.1\r\n` +
    `host: 127.0.0.1:${port}\r\ncontent-type: application/json\r\n` +
    `content-length: ${DECLARED_BYTES}\r\n${auth}\r\n`
  );
}

interface Attack {
  socket: Socket;
  /** Resolves when the server closed the socket or every byte meant to be sent was written. */
  settled: Promise<'refused' | 'held'>;
  answer: () => string;
}

function attack(port: number, i: number): Attack {
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
  socket.on('error', () => undefined);
  const settled = new Promise<'refused' | 'held'>((resolve) => {
    socket.once('close', () => resolve('refused'));
    const chunk = Buffer.alloc(CHUNK_BYTES, 0x61);
    let sent = 0;
    const pump = () => {
      while (sent < SENT_BYTES && !socket.destroyed) {
        sent += CHUNK_BYTES;
        const last = sent >= SENT_BYTES;
        const more = socket.write(chunk, () => {
          if (last) resolve('held');
        });
        if (!more) return void socket.once('drain', pump);
      }
    };
    socket.once('connect', () => {
      socket.write(attackHead(i, port));
      pump();
    });
  });
  return { socket, settled, answer: () => answer };
}

t.test('50 unauthenticated near-8 MiB bodies add less than 64 MiB of RSS', async (t) => {
  const redis = await startTestRedis(t);
  const child = spawn(process.execPath, [...process.execArgv, entry], {
    env: {
      ...process.env,
      WHARF_PORT: '0',
      WHARF_DATA_DIR: t.testdir(),
      WHARF_REDIS_URL: redis.url,
      WHARF_LOG_LEVEL: 'warn',
      WHARF_MIN_FREE_DISK_MB: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', () => reject(new Error(`exited:\n${out}`)));
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m !== null && out.includes('Create a tenant')) resolve(m[1]);
    };
    child.stdout.on('data', check);
  });
  const adminToken = /operator token: (\S+)/.exec(out)![1];
  const port = Number(new URL(url).port);
  const pid = child.pid!;

  // Warm up the paths the attack takes (and the authenticated one), so their code is loaded.
  const tenant = await provisionTenant({ url, adminToken });
  const who = { ak: tenant.accessKeyId, sk: tenant.accessKeySecret };
  const topicPath = `/v1/instances/${tenant.instanceId}/topics/orders`;
  t.equal(
    (
      await signedFetch(url, {
        method: 'PUT',
        path: topicPath,
        body: { messageType: 'NORMAL' },
        ...who,
      })
    ).status,
    201,
  );
  t.equal(
    (
      await signedFetch(url, {
        method: 'PUT',
        path: `/v1/instances/${tenant.instanceId}/groups/billing`,
        body: {},
        ...who,
      })
    ).status,
    201,
  );
  t.equal((await fetch(`${url}${topicPath}/messages`, { method: 'POST', body: '{}' })).status, 401);

  const peakReset = resetPeak(pid);
  const before = memory(pid);
  const attacks = Array.from({ length: SOCKETS }, (_, i) => attack(port, i));
  t.teardown(() => attacks.forEach((a) => a.socket.destroy()));
  const outcomes = await Promise.all(attacks.map((a) => a.settled));
  const after = memory(pid);
  const grownKiB = (peakReset ? after.peakKiB : after.rssKiB) - before.rssKiB;
  t.comment(
    `server RSS ${Math.round(before.rssKiB / 1024)} MiB before, ` +
      `${peakReset ? 'peak' : 'now'} ${Math.round((peakReset ? after.peakKiB : after.rssKiB) / 1024)} MiB during ` +
      `${SOCKETS} sockets × ${SENT_BYTES / MIB} MiB sent (${outcomes.filter((o) => o === 'refused').length} refused)`,
  );
  t.ok(grownKiB < 64 * 1024, `RSS grew by ${Math.round(grownKiB / 1024)} MiB (< 64 MiB)`);
  const statuses = attacks.map((a) => /^HTTP\/1\.1 (\d{3})/.exec(a.answer())?.[1]);
  t.ok(
    statuses.every((s) => s === '401' || s === '403'),
    `every socket answered 401/403 from its headers (${[...new Set(statuses)].join(', ')})`,
  );

  // An authenticated large body still goes through: a 3.5 MiB message, ≈ 4.7 MiB as base64.
  const body = Buffer.alloc(3.5 * MIB, 0x7a);
  const published = await signedFetch(url, {
    method: 'POST',
    path: `${topicPath}/messages`,
    body: { messages: [{ body: body.toString('base64'), bodyEncoding: 'base64' }] },
    ...who,
  });
  t.equal(published.status, 200, 'a signed 4.7 MiB publish is accepted');
  const received = await signedFetch(url, {
    method: 'POST',
    path: `${topicPath}/groups/billing/receive`,
    body: { maxMessages: 1 },
    ...who,
  });
  const [message] = (await json(received)).messages as { body: string }[];
  t.equal(Buffer.from(message.body, 'base64').length, body.length, 'and received whole');
});
