// Resets of a group's position being made now, per subscription name (group key and store
// topic). A BROADCASTING consumer seen for the first time starts where its group's base (slot 0)
// stands; a reset being made while it looks would move the base after it copied the old place,
// and would not move it either (the reset lists the consumers it moves when it begins). So a
// joining consumer waits for a reset under way and looks again when one began meanwhile
// (PopReader.ensureCursors): it starts where the reset put the group, or the reset finds it.
export class GroupResets {
  private readonly running = new Map<string, { done: Promise<void>; count: number }>();
  /** Changes whenever a reset begins (any subscription's: a look made again is cheap). */
  private began = 0;

  /** Marks a reset of `name` under way until the returned end is called. */
  begin(name: string): () => void {
    this.began++;
    let end!: () => void;
    const done = new Promise<void>((resolve) => (end = resolve));
    const earlier = this.running.get(name);
    const mark = {
      done: earlier === undefined ? done : Promise.all([earlier.done, done]).then(() => undefined),
      count: (earlier?.count ?? 0) + 1,
    };
    this.running.set(name, mark);
    return () => {
      end();
      const current = this.running.get(name);
      if (current !== undefined && --current.count === 0) this.running.delete(name);
    };
  }

  /** The resets of `name` under way (undefined: none), and a number that changes when a reset
   *  begins. */
  state(name: string): { under: Promise<void> | undefined; began: number } {
    return { under: this.running.get(name)?.done, began: this.began };
  }
}

/** What resets are marked by: a group's subscriptions of one store topic. */
export function resetName(groupKey: string, storeTopic: string): string {
  return `${groupKey}\u0000${storeTopic}`;
}
