// Runs an async task per item, at most `limit` at once — for file work over many files (loading,
// recovering and syncing consume queues), whose calls are thread-pool trips: one at a time, a
// store of tens of thousands of files waits for each in turn. After a task fails no new one
// starts; the ones running finish, then the first failure is thrown.

/** File tasks at once: consume queues recovered or expired, topic directories loaded. */
export const PARALLEL_FILE_TASKS = 16;

export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const failed: { error?: unknown } = {};
  const worker = async (): Promise<void> => {
    while (next < items.length && !('error' in failed)) {
      const item = items[next++];
      try {
        await task(item);
      } catch (error) {
        if (!('error' in failed)) failed.error = error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if ('error' in failed) throw failed.error;
}
