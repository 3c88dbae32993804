// A chain of tasks run one at a time, in call order: the store's derived-file work (dispatch
// rounds, checkpoints, retention, topic deletions) goes through one, so none of it interleaves.
// A failed task rejects its own caller only; the next one still runs.
/** Runs tasks one at a time, in order. */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
