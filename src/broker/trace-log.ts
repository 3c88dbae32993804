// Message trace: what happened to a message after it was published (delivered, acked, retried,
// dead-lettered, re-sent), kept in the store like RocketMQ's trace topic. Events are gathered
// per instance for a few milliseconds and written as one record of an internal trace topic whose
// keys name the messages, so the store's key index finds a message's events; they expire with
// the log. Keys are message positions, not ids, because an ack knows only the position its
// receipt handle names. Writing is off the answer path (a trace is diagnostics: a crash may lose the last few
// milliseconds of events) and bounded: past the bound events are dropped and counted.
import type { TraceEvent } from '../cluster/broker-client.js';
import type { MessageStore } from '../store/index.js';
import { MessageFlags } from '../store/index.js';

/** An event and the message it is about, named by its first position (see tracePosition). */
export interface TracedEvent extends TraceEvent {
  position: string;
}

/** The key of a message's events: the user topic and its original queue position (a copy made
 *  for a dead letter or a re-send names its original). */
export function tracePosition(topic: string, queueId: number, queueOffset: number): string {
  return `${topic}:${queueId}:${queueOffset}`;
}

export interface TraceLogOptions {
  /** How long events wait to be written together; default 20 ms. */
  lingerMs?: number;
  /** Events waiting at most (over all instances); more are dropped. Default 65536. */
  maxPendingEvents?: number;
  onError?: (error: unknown) => void;
}

/** The trace topic of a tenant's instance (queue 0). */
export function traceTopic(tenantId: string, instanceId: string): string {
  return `${tenantId}/${instanceId}/%TRACE%`;
}

export class TraceLog {
  private readonly pending = new Map<string, TracedEvent[]>();
  private pendingCount = 0;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  dropped = 0;

  constructor(
    private readonly store: MessageStore,
    private readonly options: TraceLogOptions = {},
  ) {}

  record(tenantId: string, instanceId: string, events: readonly TracedEvent[]): void {
    if (events.length === 0) return;
    if (this.pendingCount + events.length > (this.options.maxPendingEvents ?? 65_536)) {
      this.dropped += events.length;
      return;
    }
    const topic = traceTopic(tenantId, instanceId);
    let list = this.pending.get(topic);
    if (list === undefined) {
      list = [];
      this.pending.set(topic, list);
    }
    for (const event of events) list.push(event);
    this.pendingCount += events.length;
    this.timer ??= setTimeout(() => void this.flush(), this.options.lingerMs ?? 20);
  }

  /** Writes what waits; resolves when it is written (close, tests). */
  flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return this.writing;
    const batches = [...this.pending];
    this.pending.clear();
    this.pendingCount = 0;
    const now = Date.now();
    const records = batches.map(([topic, events]) => ({
      topic,
      queueId: 0,
      keys: [...new Set(events.map((event) => event.position))],
      body: Buffer.from(JSON.stringify(events)),
      bornTimestampMs: now,
      flags: MessageFlags.SYSTEM,
    }));
    this.writing = this.writing
      .then(() => this.store.append(records))
      .then(
        () => undefined,
        (error: unknown) => {
          this.dropped += batches.reduce((n, [, events]) => n + events.length, 0);
          this.options.onError?.(error);
        },
      );
    return this.writing;
  }

  /** A message's recorded events, oldest first (at most the last `limit` records that name it). */
  async events(
    tenantId: string,
    instanceId: string,
    position: string,
    limit = 64,
  ): Promise<TraceEvent[]> {
    const records = await this.store.queryByKey(traceTopic(tenantId, instanceId), position, limit);
    const events: TraceEvent[] = [];
    // oldest record first, so events of one millisecond keep the order they were written in
    for (const record of records.reverse()) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(record.body.toString());
      } catch {
        continue;
      }
      if (!Array.isArray(parsed)) continue;
      for (const item of parsed as TracedEvent[]) {
        if (item.position !== position) continue;
        const { position: _position, ...event } = item;
        events.push(event);
      }
    }
    return events.sort((a, b) => a.time - b.time);
  }
}
