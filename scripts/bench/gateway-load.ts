// The load generator of bench:gateway, in its own process so that it does not share the
// server's event loop: runs autocannon against one target and prints the result as JSON.
import autocannon from 'autocannon';

interface Target {
  url: string;
  headers: Record<string, string>;
  connections: number;
  durationSeconds: number;
}

const target = JSON.parse(process.argv[2]) as Target;
const result = await autocannon({
  url: target.url,
  connections: target.connections,
  pipelining: 1,
  duration: target.durationSeconds,
  headers: target.headers,
});
process.stdout.write(
  `${JSON.stringify({
    rps: result.requests.average,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  })}\n`,
);
