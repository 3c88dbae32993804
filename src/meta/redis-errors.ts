// Tells Redis being unreachable (retriable: 503) from Redis refusing a command (a bug: 500).
// ioredis rejects a command in flight when its connection drops with MaxRetriesPerRequestError,
// one issued while it reconnects with "Stream isn't writeable" (no offline queue), one past its
// deadline with "Command timed out", and with "Connection is closed" once a connection is gone.

const UNREACHABLE =
  /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EPIPE|Stream isn't writeable|Command timed out|Socket timeout/;

export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'MaxRetriesPerRequestError' || UNREACHABLE.test(err.message);
}
