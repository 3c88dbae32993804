// The load generator of bench:delay's HTTP rows, in its own process (not on the server's event
// loop): autocannon POSTs one signed body (replayed: each request schedules new messages).
import autocannon from 'autocannon';

interface Target {
  url: string;
  headers: Record<string, string>;
  body: string;
  connections: number;
  durationSeconds: number;
}

const target = JSON.parse(process.argv[2]) as Target;
const result = await autocannon({
  url: target.url,
  method: 'POST',
  body: target.body,
  connections: target.connections,
  pipelining: 1,
  duration: target.durationSeconds,
  headers: target.headers,
});
process.stdout.write(
  `${JSON.stringify({
    rps: result.requests.average,
    total: result.requests.total,
    ok: result.requests.total - result.non2xx - result.errors - result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  })}\n`,
);
