// `npm run bench:alarms [-- --publishes N --alarms A]`: publish latency of a whole node while
// alarm webhooks hang, against the same node with no alarm firing, in one run. The node is the
// all-in-one (startNode: private Redis, sync flush, evaluator every 100 ms, BullMQ worker); a
// local receiver accepts every webhook and never answers, so all worker slots sit on hanging
// deliveries while the publishes run. Yardsticks in the same run: the same publishes before any
// alarm exists, and with the same alarms evaluated every 100 ms but not firing (the evaluator's
// own cost), so the last row's difference from the second is the hanging webhooks'.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sigv4Headers } from './lib/sigv4-headers.js';
import { pino } from 'pino';
import { loadConfig } from '../../src/cli/config.js';
import { startNode } from '../../src/cli/node.js';
import { summarizeLatencies } from './lib/percentiles.js';
import { formatMs, formatRatio, formatTable } from './lib/table.js';

const { values } = parseArgs({
  options: {
    publishes: { type: 'string', default: '500' },
    alarms: { type: 'string', default: '24' },
  },
  strict: true,
});
const publishes = Number(values.publishes);
const alarmCount = Number(values.alarms);

function signed(url: string, method: string, path: string, ak: string, sk: string, body?: string) {
  const headers = sigv4Headers(url, method, path, ak, sk, body);
  return fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-alarms-'));
  let hanging = 0;
  const receiver: Server = createServer((req) => {
    hanging++;
    req.resume();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const node = await startNode(
    loadConfig({
      WHARF_PORT: '0',
      WHARF_DATA_DIR: dir,
      WHARF_REDIS_URL: 'private',
      WHARF_ADMIN_TOKEN: 'bench-admin-token-0123456789',
      WHARF_MIN_FREE_DISK_MB: '0',
      WHARF_ALARM_INTERVAL_MS: '100',
      WHARF_WEBHOOK_ALLOW_PRIVATE: 'true',
      WHARF_WEBHOOK_TIMEOUT_MS: '60000',
      WHARF_METRICS_SAMPLE_MS: '0',
    }),
    pino({ level: 'silent' }),
  );
  try {
    const admin = (method: string, path: string, body?: unknown) =>
      fetch(`${node.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${node.adminToken}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }).then((r) => r.json() as Promise<Record<string, string>>);
    const { tenantId } = await admin('POST', '/admin/v1/tenants', { name: 'bench' });
    const key = await admin('POST', `/admin/v1/tenants/${tenantId}/access-keys`, {});
    const call = (method: string, path: string, body?: unknown) =>
      signed(
        node.url,
        method,
        path,
        key.accessKeyId,
        key.accessKeySecret,
        body === undefined ? undefined : JSON.stringify(body),
      );
    const { instanceId } = (await (await call('POST', '/v1/instances', { name: 'b' })).json()) as {
      instanceId: string;
    };
    const i = `/v1/instances/${instanceId}`;
    await call('PUT', `${i}/topics/orders`, { messageType: 'NORMAL' });
    await call('PUT', `${i}/groups/billing`, {});
    const body = { messages: [{ body: 'x'.repeat(1024) }] };
    const run = async () => {
      const samples: number[] = [];
      for (let k = 0; k < publishes; k++) {
        const started = performance.now();
        const res = await call('POST', `${i}/topics/orders/messages`, body);
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`publish answered ${res.status}`);
        samples.push(performance.now() - started);
      }
      return summarizeLatencies(samples.sort((a, b) => a - b));
    };
    const putAlarms = async (threshold: number) => {
      for (let a = 0; a < alarmCount; a++) {
        await call('PUT', `${i}/alarms/a${a}`, {
          metric: 'backlog',
          topic: 'orders',
          group: 'billing',
          threshold,
          forSeconds: 0,
          webhookUrl: hookUrl,
        });
      }
    };
    await run(); // warm-up
    const quiet = await run();
    // the same rules evaluated every 100 ms but never firing: the evaluator's own cost
    await putAlarms(1e15);
    const evaluated = await run();
    await putAlarms(0);
    const deadline = Date.now() + 60_000;
    while (hanging < Math.min(alarmCount, 16) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const during = await run();
    const rows = [
      ['no alarms (yardstick)', quiet],
      [`${alarmCount} alarms evaluated, none firing`, evaluated],
      [`${alarmCount} firing, ${hanging} webhooks hanging`, during],
    ] as const;
    process.stdout.write(
      `\n${publishes} sequential 1 KiB publishes over signed HTTP, sync flush (shared machine: noisy)\n\n` +
        formatTable(
          [
            { header: 'case' },
            { header: 'p50', align: 'right' },
            { header: 'p99', align: 'right' },
            { header: 'max', align: 'right' },
            { header: 'p50 ratio', align: 'right' },
          ],
          rows.map(([name, s]) => [
            name,
            formatMs(s.p50Ms),
            formatMs(s.p99Ms),
            formatMs(s.maxMs),
            formatRatio(s.p50Ms, quiet.p50Ms),
          ]),
        ) +
        '\n',
    );
  } finally {
    receiver.closeAllConnections();
    receiver.close();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
