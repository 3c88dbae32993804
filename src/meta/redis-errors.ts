// Tells Redis being unreachable (retriable: 503) from Redis refusing a command (a bug: 500).
// ioredis rejects queued commands with MaxRetriesPerRequestError while it reconnects, and with
// "Connection is closed" once a connection is gone.

const UNREACHABLE =
  /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EPIPE|Stream isn't writeable/;

export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'MaxRetriesPerRequestError' || UNREACHABLE.test(err.message);
}
