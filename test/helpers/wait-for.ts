// Waiting for a condition instead of sleeping for a guessed time: poll a probe until it gives a
// truthy value or a deadline passes (a failure then names what was awaited, not "timed out").

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/** Polls `probe` every `intervalMs` until it returns a truthy value, which is returned; rejects
 *  naming `what` after `timeoutMs`. The deadline bounds a broken run, never a passing one. */
export async function waitFor<T>(
  what: string,
  probe: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 10 } = {},
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Waits until the wall clock has passed `atMs` (a visibility or back-off deadline the code under
 *  test reported): the condition is the time itself, so no margin is guessed. */
export function waitUntilPast(atMs: number): Promise<true> {
  return waitFor(`the clock to pass ${new Date(atMs).toISOString()}`, () => Date.now() > atMs, {
    timeoutMs: Math.max(0, atMs - Date.now()) + 10_000,
    intervalMs: 5,
  });
}
