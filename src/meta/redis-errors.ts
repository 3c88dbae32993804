// Tells Redis being unreachable or refusing writes for a while (retriable: 503) from Redis
// refusing a command (a bug: 500). ioredis rejects a command in flight when its connection drops
// with MaxRetriesPerRequestError, one issued while it reconnects with "Stream isn't writeable" (no
// offline queue), one past its deadline with "Command timed out", and with "Connection is closed"
// once a connection is gone. A reachable Redis refuses writes while it is out of memory under
// `noeviction` (OOM), a replica after a failover (READONLY), its RDB save failed (MISCONF), it
// loads its data (LOADING), a script runs long (BUSY) or its primary is away (MASTERDOWN,
// NOREPLICAS); inside a script or a MULTI the reply carries the same code (EXECABORT holds the
// queued commands' errors).

const UNREACHABLE =
  /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EPIPE|Stream isn't writeable|Command timed out|Socket timeout/;
/** Reply codes of a Redis that answers but takes no writes for now (at the start of the reply,
 *  or after the script prefix Redis puts before an error raised inside a script). */
const REFUSING =
  /(?:^|: )(?:OOM|READONLY|MISCONF|LOADING|BUSY|MASTERDOWN|NOREPLICAS|TRYAGAIN|CLUSTERDOWN)\b/;

export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError' || UNREACHABLE.test(err.message)) return true;
  if (REFUSING.test(err.message)) return true;
  const previous = (err as { previousErrors?: unknown }).previousErrors;
  return (
    /^EXECABORT\b/.test(err.message) &&
    Array.isArray(previous) &&
    previous.some((inner) => isRedisUnavailable(inner))
  );
}
