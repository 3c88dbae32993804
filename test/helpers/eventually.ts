// Waiting for a condition of a system that may be mid-outage: like waitFor, but a check that
// throws or rejects (a refused connection, a client timeout) counts as "not yet", not a failure.
import { waitFor } from './wait-for.js';

/** Polls `check` until it is true; rejects naming `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(
    what,
    () =>
      Promise.resolve()
        .then(check)
        .catch(() => false),
    {
      timeoutMs,
      intervalMs: 25,
    },
  );
}
