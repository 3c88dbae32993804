// The bytes of message bodies a gateway holds in receive answers not yet read by their clients,
// all connections together. A receive asks its broker for no more than what is left (at most one
// answer's 16 MiB; at least one message when nothing is left), and holds what it got until its
// answer is out or its connection gone: a thousand parked receives of big messages answered at
// once, read slowly or not at all, no longer hold 16 MiB each.
export class AnswerBudget {
  private held = 0;

  constructor(
    readonly limitBytes: number,
    private readonly onChange: (heldBytes: number) => void = () => undefined,
  ) {}

  /** Bytes of bodies an answer may carry now (0: only its one first message). */
  available(): number {
    return Math.max(0, this.limitBytes - this.held);
  }

  /** Holds `bytes` (it may pass the limit: a first message always goes); the release is
   *  idempotent. */
  hold(bytes: number): () => void {
    this.held += bytes;
    this.onChange(this.held);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= bytes;
      this.onChange(this.held);
    };
  }
}
