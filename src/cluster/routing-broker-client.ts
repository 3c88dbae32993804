// The gateway's BrokerClient in a cluster: one network client per registered broker, and the
// routing rules. A publish's queue is chosen here (queue-choice.ts) and decides the broker; an
// ack or visibility change goes to the broker its receipt handle names; a lookup, trace, cancel
// or transaction decision to the broker its id names; receive, check-back, stats, reset, queries,
// dead letters and drops fan out to the brokers holding the topic (or every live broker) and
// merge. A receive across brokers answers as soon as one has messages: the others' parked calls
// are cancelled, and what they popped meanwhile is made visible again (never hidden). NORMAL and
// DELAY publishes whose broker is down are retried on another broker's queue; FIFO and
// TRANSACTION ones answer 503 naming the broker they wait for. A publish call that failed without
// an answer (its broker may have stored it) leaves a publish fence for that broker first, which
// withdraws what it stored of the call (src/broker/publish-fences.ts): stored once, not twice.
// A batch split over brokers that answers an error although some brokers stored their part
// fences those parts too, once every call has settled: the client's retry (a 503 promises it is
// safe) stores them once. (TRANSACTION publishes are not fenced: their half messages are not in
// the queues a fence scans.)
// A topic, group or instance deleted while a broker that holds (or may hold) it is down, or does
// not answer the drop, leaves a pending drop for that broker, which it applies when it is back,
// before it serves (src/broker/pending-drops.ts): a name created again never meets the old data.
import { randomBytes } from 'node:crypto';
import { errorMessage, isWharfError, WharfError } from '../errors.js';
import { dedupScopeKey } from '../model/index.js';
import type {
  CheckedMessage,
  DeadLetter,
  DedupRedirects,
  GroupDescriptor,
  DropTarget,
  MessageView,
  PendingDropSink,
  PublishFence,
  PublishFenceSink,
  PublishMessage,
  PublishResult,
  ReceiveRequest,
  ReceivedMessage,
  TopicDescriptor,
  TraceEvent,
  TransactionCheckRequest,
  TransactionDecisionOptions,
} from '../model/index.js';
import { MessageIdCodec, receiptHandleBrokerId } from '../protocol/index.js';
import type {
  AckResult,
  BrokerClient,
  BrokerHealth,
  BrokerReach,
  GroupStats,
  MessagePage,
  ResetTarget,
  TimeQuery,
  TopicStats,
  VisibilityResult,
} from './broker-client.js';
import { returnUnseen } from './broker-client.js';
import { leaveDrop } from './dropped-names.js';
import { canFailOver, chooseQueues, keyedQueue } from './queue-choice.js';

/** A registered broker as the registry reports it. */
export interface BrokerAddress {
  brokerId: number;
  address: string;
  /** Holds its lease in the registry. */
  live: boolean;
}

/** The broker registry as the routing client follows it (meta's BrokerDirectory). */
export interface BrokerAddressBook {
  readonly brokers: ReadonlyMap<number, BrokerAddress>;
  onChange(listener: (brokers: ReadonlyMap<number, BrokerAddress>) => void): void;
}

/** Where a topic's queues live (meta's QueuePlacements). */
export interface PlacementSource {
  /** The broker of each queue, placing unplaced queues on `liveBrokerIds`. */
  place(
    topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic' | 'queueCount'>,
    liveBrokerIds: readonly number[],
  ): Promise<number[]>;
  drop(topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic'>): Promise<void>;
}

export interface RoutingLogger {
  warn(obj: object, msg?: string): void;
}

export interface RoutingOptions {
  directory: BrokerAddressBook;
  placements: PlacementSource;
  /** A client for one broker (tcpBrokerClient in practice). */
  connect: (address: string, brokerId: number) => BrokerClient;
  /** The brokers' MAC key: message ids name their broker under it. */
  macKey: Buffer;
  /** Where a publish call that failed over leaves its fence for the broker that did not answer
   *  (RedisPublishFenceSink); without it a failed-over call may be stored twice. */
  fences?: PublishFenceSink;
  /** Where publishes carrying a dedupId that failed over are remembered, so that a repeat made
   *  once their broker is back goes where they went (RedisDedupRedirects); without it such a
   *  repeat is stored again. */
  dedupRedirects?: DedupRedirects;
  /** Where a deletion leaves its drop for a broker that is down (RedisPendingDropSink); without
   *  it such a broker keeps the deleted topic's, group's or instance's data. */
  drops?: PendingDropSink;
  /** retry-after of a 503 for a broker that is down. Default 1000 ms. */
  retryAfterMs?: number;
  /** How long a broker whose call failed to connect is passed over (then until it answers a
   *  health probe). Default 2000 ms. */
  suspectMs?: number;
  logger?: RoutingLogger;
}

interface Connection {
  address: string;
  client: BrokerClient;
}

interface Placed {
  queueCount: number;
  createdAt: number;
  brokers: number[];
}

const MAX_PLACEMENTS = 100_000;

/** How long a broker has to answer the health probe before queues are placed on it. */
const PROBE_MS = 1000;

/** How long a broker has to answer the health call of a gateway's /readyz: well inside a
 *  readiness probe's default timeout (1 s), so one broker that does not answer (a partition, a
 *  stalled process) is listed unreachable instead of making every gateway's probe fail. */
const HEALTH_MS = 500;

/** How often a gateway reads whether publishes carrying a dedupId moved off a broker. */
const MOVED_MARK_READ_MS = 1000;

/** How long dedup lookups are held off after one failed. */
const LOOKUP_HOLD_MS = 5000;

/** A broker's dedup marks as last read: per topic, until when its moves may be repeated. */
interface MovedMarks {
  until: Map<string, number>;
  readAtMs: number;
}

/** How long a broker that answered a probe is taken as reachable without another. */
const REACHED_MS = 5000;

/** A call of a batch that stored its part: fenced if the batch answers an error (publish). */
interface StoredPart {
  brokerId: number;
  fence: PublishFence;
  /** Every message carries a dedupId and went to the queue it keys to. */
  dedupKeyed: boolean;
}

export class RoutingBrokerClient implements BrokerClient {
  private readonly connections = new Map<number, Connection>();
  /** Per broker whose call failed to reach it: until when it is passed over (isUp). */
  private readonly suspects = new Map<number, number>();
  /** Suspects whose time ran out, being asked for their health. */
  private readonly probing = new Set<number>();
  /** When each broker last answered a placement's health probe. */
  private readonly reached = new Map<number, number>();
  private readonly placed = new Map<string, Placed>();
  private readonly ids: MessageIdCodec;
  private readonly retryAfterMs: number;
  private readonly suspectMs: number;
  private turn = 0;
  /** Per broker: until when publishes carrying a dedupId moved off it may be repeated, and when
   *  that was read from Redis. */
  private readonly movedMarks = new Map<number, MovedMarks>();
  private readonly markReads = new Map<number, Promise<MovedMarks>>();
  /** A dedup lookup failed (Redis away): none is tried until then. */
  private lookupsHeldUntil = 0;
  private closed = false;

  constructor(private readonly options: RoutingOptions) {
    this.ids = new MessageIdCodec(options.macKey);
    this.retryAfterMs = options.retryAfterMs ?? 1000;
    this.suspectMs = options.suspectMs ?? 2000;
    this.sync(options.directory.brokers);
    options.directory.onChange((brokers) => this.sync(brokers));
  }

  // ---- routes ----

  /** Connections follow the registry: a new broker or a new address gets a new client. */
  private sync(brokers: ReadonlyMap<number, BrokerAddress>): void {
    if (this.closed) return;
    for (const broker of brokers.values()) {
      const known = this.connections.get(broker.brokerId);
      if (known?.address === broker.address) continue;
      if (known !== undefined) void known.client.close().catch(() => undefined);
      this.connections.set(broker.brokerId, {
        address: broker.address,
        client: this.options.connect(broker.address, broker.brokerId),
      });
    }
    // a registry change (a broker back, or gone) is news the suspicion may be stale against
    this.suspects.clear();
    this.reached.clear();
  }

  private isUp = (brokerId: number): boolean => {
    if (this.options.directory.brokers.get(brokerId)?.live !== true) return false;
    const until = this.suspects.get(brokerId);
    if (until === undefined) return true;
    if (until <= Date.now()) this.probeSuspect(brokerId);
    return false;
  };

  /**
   * A suspect whose time ran out is asked for its health before calls go to it again (one probe
   * at a time, PROBE_MS): it stays passed over until it answers, and is suspected again if it
   * does not. Calls themselves wait up to their deadline (5 s): sent to a broker still cut off,
   * each publish that chose one of its queues would take that long before failing over.
   */
  private probeSuspect(brokerId: number): void {
    const connection = this.connections.get(brokerId);
    if (this.probing.has(brokerId) || connection === undefined || this.closed) return;
    this.probing.add(brokerId);
    const suspectedAt = this.suspects.get(brokerId);
    void within(connection.client.health(), PROBE_MS)
      .then(
        () => {
          // unless suspected anew meanwhile (a call failed), or cleared (a registry change)
          if (this.suspects.get(brokerId) === suspectedAt) this.suspects.delete(brokerId);
        },
        () => {
          if (this.suspects.get(brokerId) === suspectedAt)
            this.suspects.set(brokerId, Date.now() + this.suspectMs);
        },
      )
      .finally(() => this.probing.delete(brokerId));
  }

  private liveBrokerIds(): number[] {
    return [...this.options.directory.brokers.keys()].filter(this.isUp);
  }

  /**
   * The live brokers this gateway reaches (each answered a health call within PROBE_MS, lately
   * or now): those a topic's unplaced queues may go to. A broker holding its lease whose
   * advertised address is wrong, or one cut off from the gateways, would get them for good.
   */
  private async reachableBrokerIds(): Promise<number[]> {
    const live = this.liveBrokerIds();
    const answered = await Promise.all(
      live.map(async (brokerId) => {
        if ((this.reached.get(brokerId) ?? 0) > Date.now() - REACHED_MS) return true;
        try {
          await within(
            this.on(brokerId, (client) => client.health()),
            PROBE_MS,
          );
          this.reached.set(brokerId, Date.now());
          return true;
        } catch {
          // passed over for these queues only: a slow answer (a pause) is no sign of a dead
          // broker, and one that cannot be reached is marked suspect by on() already
          return false;
        }
      }),
    );
    return live.filter((_, i) => answered[i]);
  }

  /** 503 naming the broker a call waits for; `brokerId` -1: none in particular (every broker
   *  of the topic is down). */
  private down(brokerId: number, why: string): WharfError {
    const address = this.options.directory.brokers.get(brokerId)?.address ?? 'not registered';
    const message = brokerId < 0 ? why : `broker ${brokerId} (${address}) is unavailable: ${why}`;
    return new WharfError('Unavailable', message, {
      retryAfterMs: this.retryAfterMs,
    });
  }

  private client(brokerId: number, evenIfDown = false): BrokerClient {
    const connection = this.connections.get(brokerId);
    if (connection === undefined) throw this.down(brokerId, 'not in the registry');
    if (!evenIfDown && !this.isUp(brokerId)) throw this.down(brokerId, 'down');
    return connection.client;
  }

  /** Runs `call` on a broker; a failure to reach it marks it suspect (passed over for a while).
   *  `evenIfDown`: tried on a broker the registry says is down too (one stopping still serves
   *  give-backs after it gave its lease up). */
  private async on<T>(
    brokerId: number,
    call: (client: BrokerClient) => Promise<T>,
    evenIfDown = false,
  ): Promise<T> {
    const client = this.client(brokerId, evenIfDown);
    try {
      return await call(client);
    } catch (error) {
      if (!isUnreachable(error)) throw error;
      this.suspects.set(brokerId, Date.now() + this.suspectMs);
      // the transport's own words ("connection to broker lost") with the broker they are about
      throw this.down(brokerId, errorMessage(error));
    }
  }

  private async placement(topic: TopicDescriptor): Promise<number[]> {
    const key = topicKey(topic);
    const known = this.placed.get(key);
    if (
      known !== undefined &&
      known.queueCount === topic.queueCount &&
      known.createdAt === topic.createdAt
    ) {
      return known.brokers;
    }
    let brokers: number[];
    try {
      try {
        // a topic whose queues are all placed needs no broker asked: its placement is read
        brokers = await this.options.placements.place(topic, []);
      } catch (error) {
        if (!isUnavailable(error) || !/no live broker/.test(errorMessage(error))) throw error;
        brokers = await this.options.placements.place(topic, await this.reachableBrokerIds());
      }
    } catch (cause) {
      if (cause instanceof WharfError) throw cause;
      throw new WharfError('Unavailable', 'cannot read the topic’s queue placement', {
        retryAfterMs: this.retryAfterMs,
        cause,
      });
    }
    if (this.placed.size >= MAX_PLACEMENTS) this.placed.clear();
    this.placed.set(key, { queueCount: topic.queueCount, createdAt: topic.createdAt, brokers });
    return brokers;
  }

  async placeTopic(topic: TopicDescriptor): Promise<void> {
    await this.placement(topic);
  }

  /** The distinct brokers holding a topic's queues, in id order. */
  private async holders(topic: TopicDescriptor): Promise<number[]> {
    return [...new Set(await this.placement(topic))].sort((a, b) => a - b);
  }

  /** The holders that are up; Unavailable when none is. */
  private async upHolders(topic: TopicDescriptor): Promise<number[]> {
    const holders = await this.holders(topic);
    const up = holders.filter(this.isUp);
    if (up.length === 0) throw this.down(holders[0] ?? -1, 'no broker of the topic is up');
    return up;
  }

  private brokerOfId(id: string, fallback: number[]): number {
    const brokerId = this.ids.brokerOf(id);
    // a malformed id goes to a holder, which answers the canonical error for it
    return brokerId !== null && this.connections.has(brokerId) ? brokerId : (fallback[0] ?? -1);
  }

  // ---- publish ----

  async publish(topic: TopicDescriptor, messages: PublishMessage[]): Promise<PublishResult[]> {
    const placement = await this.placement(topic);
    const redirects = await this.dedupRedirects(topic, placement, messages);
    // the calls that stored their part: withdrawn if the batch as a whole answers an error —
    // but for a 503 (the client retries it) those whose every message carries a dedupId and
    // went to the queue it keys to: the retry goes there too and finds each as a duplicate (its
    // messageId, not stored again); fenced, such a part could be withdrawn after a consumer took
    // it (the batch's other broker stopping is enough) and the retry would store it again
    const stored: StoredPart[] = [];
    try {
      return await this.publishRounds(topic, placement, messages, stored, redirects);
    } catch (error) {
      const fenced = stored.filter((part) => !(part.dedupKeyed && isUnavailable(error)));
      await Promise.all(fenced.map(({ brokerId, fence }) => this.fence(brokerId, fence)));
      throw error;
    }
  }

  /** Sends each message of a batch to its queue's broker, failing NORMAL and DELAY calls over;
   *  rejects once every call of the round has settled, with `stored` naming the calls answered. */
  private async publishRounds(
    topic: TopicDescriptor,
    placement: number[],
    messages: PublishMessage[],
    stored: StoredPart[],
    redirects: (number | undefined)[],
  ): Promise<PublishResult[]> {
    const outgoing = [...messages];
    const results: PublishResult[] = new Array<PublishResult>(messages.length);
    let pending = messages.map((_, index) => index);
    const failed = new Set<number>();
    const isUp = (id: number) => !failed.has(id) && this.isUp(id);
    // each round sends every pending message once; a broker that fails is left out of the next
    for (let round = 0; pending.length > 0; round++) {
      const choices = chooseQueues(
        topic,
        placement,
        pending.map((i) => messages[i]),
        isUp,
        this.turn++,
        pending.map((i) => redirects[i]),
      );
      await this.rememberMoves(topic, placement, pending, messages, choices, isUp);
      const byBroker = new Map<number, number[]>();
      choices.forEach((choice, k) => {
        if ('down' in choice) {
          const waitsFor = choice.down < 0 ? -1 : placement[choice.down];
          throw this.down(
            waitsFor,
            choice.down < 0
              ? 'no broker of the topic is up'
              : `queue ${choice.down} of this ${topic.messageType} topic lives there and waits ` +
                  'for it (order over availability)',
          );
        }
        const brokerId = placement[choice.queueId];
        const list = byBroker.get(brokerId) ?? [];
        list.push(pending[k]);
        byBroker.set(brokerId, list);
        outgoing[pending[k]] = { ...messages[pending[k]], queueId: choice.queueId };
      });
      const retry: number[] = [];
      const errors: unknown[] = [];
      await Promise.all(
        [...byBroker].map(async ([brokerId, indexes]) => {
          // the call's id goes with each message: if this broker stores them and its answer is
          // lost, or another part of the batch fails, a fence names what it must withdraw
          const requestId = canFence(topic) ? newRequestId() : undefined;
          const call = indexes.map((i) =>
            requestId === undefined ? outgoing[i] : { ...outgoing[i], requestId },
          );
          const fence =
            requestId === undefined
              ? undefined
              : {
                  requestId,
                  topic,
                  queueIds: [...new Set(call.map((m) => m.queueId ?? 0))],
                  sentAtMs: Date.now(),
                };
          try {
            const answers = await this.on(brokerId, (c) => c.publish(topic, call));
            answers.forEach((answer, k) => (results[indexes[k]] = answer));
            if (fence !== undefined) {
              const dedupKeyed = call.every(
                (m) => m.dedupId !== undefined && m.queueId === keyedQueue(topic, m),
              );
              stored.push({ brokerId, fence, dedupKeyed });
            }
          } catch (error) {
            // the broker may have stored them: fenced, they are withdrawn there, whether they go
            // to another broker now or the client is answered 503 (and sends them again)
            if (fence !== undefined && isUnavailable(error)) await this.fence(brokerId, fence);
            if (!isUnavailable(error) || !canFailOver(topic) || round >= placement.length) {
              errors.push(error);
              return;
            }
            failed.add(brokerId);
            this.options.logger?.warn(
              { brokerId, messages: indexes.length, err: errorMessage(error) },
              'publish failed over to another broker',
            );
            retry.push(...indexes);
          }
        }),
      );
      // only now: a call still running when another failed may yet store its part
      if (errors.length > 0) throw errors[0];
      pending = retry;
    }
    return results;
  }

  /**
   * Per message, the queue a publish of its dedupId went to while the broker its key binds it to
   * was down (a repeat goes there too), or undefined. Looked up only for the topics a broker's
   * marks name (movedOff): a publish with no dedupId costs no Redis call, nor does the lookup of
   * a topic nothing of moved off its broker. A failed lookup (Redis away) sends the messages to
   * their keyed queues and holds further lookups off for a few seconds (at least once).
   */
  private async dedupRedirects(
    topic: TopicDescriptor,
    placement: readonly number[],
    messages: readonly PublishMessage[],
  ): Promise<(number | undefined)[]> {
    const redirects: (number | undefined)[] = [];
    const sink = this.options.dedupRedirects;
    if (sink === undefined || !canFailOver(topic)) return redirects;
    const asked = new Map<number, { indexes: number[]; dedupIds: string[] }>();
    for (const [index, message] of messages.entries()) {
      if (message.dedupId === undefined) continue;
      const keyed = keyedQueue(topic, message);
      if (keyed === null) continue;
      const brokerId = placement[keyed];
      if (!(await this.movedOff(brokerId, topic))) continue;
      const entry = asked.get(brokerId) ?? { indexes: [], dedupIds: [] };
      entry.indexes.push(index);
      entry.dedupIds.push(message.dedupId);
      asked.set(brokerId, entry);
    }
    if (asked.size === 0 || Date.now() < this.lookupsHeldUntil) return redirects;
    await Promise.all(
      [...asked].map(async ([brokerId, { indexes, dedupIds }]) => {
        try {
          const found = await sink.lookup(brokerId, topic, dedupIds);
          found.forEach((queueId, k) => {
            if (queueId !== null) redirects[indexes[k]] = queueId;
          });
        } catch (error) {
          if (Date.now() < this.lookupsHeldUntil) return;
          this.lookupsHeldUntil = Date.now() + LOOKUP_HOLD_MS;
          this.options.logger?.warn(
            { brokerId, err: errorMessage(error), holdMs: LOOKUP_HOLD_MS },
            'dedupIds moved off a broker not looked up: repeats may be stored again',
          );
        }
      }),
    );
    return redirects;
  }

  /** Whether publishes carrying a dedupId of `topic` moved off `brokerId` may still be repeated.
   *  A broker's marks are read before its first such publish and whenever they are over two
   *  seconds old (a publish waits for that read, shared by every publish meanwhile); between one
   *  and two seconds old they are read again in the background. */
  private async movedOff(brokerId: number, topic: TopicDescriptor): Promise<boolean> {
    const now = Date.now();
    let marks = this.movedMarks.get(brokerId);
    if (marks === undefined || now - marks.readAtMs >= 2 * MOVED_MARK_READ_MS) {
      marks = await this.readMarks(brokerId);
    } else if (now - marks.readAtMs >= MOVED_MARK_READ_MS) void this.readMarks(brokerId);
    return (marks.until.get(dedupScopeKey(topic)) ?? 0) > Date.now();
  }

  /** Reads a broker's marks (one read at a time per broker); Redis away: what was known, taken
   *  as read now (the next read is due in a second). */
  private readMarks(brokerId: number): Promise<MovedMarks> {
    let reading = this.markReads.get(brokerId);
    if (reading !== undefined) return reading;
    const sink = this.options.dedupRedirects;
    reading = (async () => {
      const read = sink === undefined ? null : await sink.movedUntil(brokerId).catch(() => null);
      const now = Date.now();
      const known = this.movedMarks.get(brokerId)?.until;
      const marks = { until: read ?? known ?? new Map<string, number>(), readAtMs: now };
      // this gateway's own moves made meanwhile are kept, whatever the read missed
      for (const [scope, untilMs] of known ?? [])
        if ((marks.until.get(scope) ?? 0) < untilMs) marks.until.set(scope, untilMs);
      for (const [scope, untilMs] of marks.until) if (untilMs <= now) marks.until.delete(scope);
      this.movedMarks.set(brokerId, marks);
      return marks;
    })().finally(() => this.markReads.delete(brokerId));
    this.markReads.set(brokerId, reading);
    return reading;
  }

  /** Remembers, before they are sent, the messages carrying a dedupId that go to another queue
   *  than their key's because its broker is down. Not written (Redis away): logged, sent all the
   *  same (a repeat after the broker is back may be stored again). */
  private async rememberMoves(
    topic: TopicDescriptor,
    placement: readonly number[],
    pending: readonly number[],
    messages: readonly PublishMessage[],
    choices: readonly ({ queueId: number } | { down: number })[],
    isUp: (brokerId: number) => boolean,
  ): Promise<void> {
    const sink = this.options.dedupRedirects;
    if (sink === undefined || !canFailOver(topic)) return;
    const moves = new Map<number, { dedupId: string; queueId: number }[]>();
    choices.forEach((choice, k) => {
      const message = messages[pending[k]];
      if (message.dedupId === undefined || 'down' in choice) return;
      const keyed = keyedQueue(topic, message);
      if (keyed === null || choice.queueId === keyed || isUp(placement[keyed])) return;
      const list = moves.get(placement[keyed]) ?? [];
      list.push({ dedupId: message.dedupId, queueId: choice.queueId });
      moves.set(placement[keyed], list);
    });
    await Promise.all(
      [...moves].map(async ([brokerId, list]) => {
        try {
          await sink.moved(brokerId, topic, list, topic.dedupWindowMs);
          const marks = this.movedMarks.get(brokerId) ?? {
            until: new Map<string, number>(),
            readAtMs: 0,
          };
          marks.until.set(dedupScopeKey(topic), Date.now() + topic.dedupWindowMs);
          this.movedMarks.set(brokerId, marks);
        } catch (error) {
          this.options.logger?.warn(
            { brokerId, messages: list.length, err: errorMessage(error) },
            'dedupIds moved off a down broker not remembered: a repeat after it is back may be stored again',
          );
        }
      }),
    );
  }

  /** Leaves a fence for a broker whose publish call failed (it may have stored the messages):
   *  it withdraws them when it applies the fence. A fence that cannot be written is logged and
   *  the failover goes on — at least once, as without fences. */
  private async fence(brokerId: number, fence: PublishFence): Promise<void> {
    if (this.options.fences === undefined) return;
    try {
      await this.options.fences.add(brokerId, fence);
    } catch (error) {
      this.options.logger?.warn(
        { brokerId, requestId: fence.requestId, err: errorMessage(error) },
        'publish fence not written: a failed-over publish may be stored twice',
      );
    }
  }

  // ---- consume ----

  async receive(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    signal?: AbortSignal,
  ): Promise<ReceivedMessage[]> {
    const brokers = await this.upHolders(topic);
    if (brokers.length === 1) {
      return this.on(brokers[0], (c) => c.receive(topic, group, request, signal));
    }
    const lookedFrom = performance.now();
    const found = await this.lookInTurn(brokers, topic, group, request, signal);
    // the park waits what is left of the wait once the look is done
    const waitMs = Math.floor(request.waitMs - (performance.now() - lookedFrom));
    if (found.length > 0 || waitMs <= 0 || signal?.aborted === true) return found;
    const parked = { ...request, waitMs };
    return this.firstAnswer(
      brokers,
      (client, s) => client.receive(topic, group, parked, s),
      signal,
      request.maxMessages,
      async (client, extra) => {
        await returnUnseen(client, topic, group, extra);
      },
    );
  }

  /**
   * A receive's look at each broker without waiting, one after another from a turning start,
   * each asked for what the answer still has room for: a backlog spread over brokers fills one
   * answer, and no broker hands out more than it carries (a parked call on every broker popped
   * a whole batch on each and gave all but one back: counted by those brokers as deliveries in
   * their trace, rates and in-flight figures). Fails only when every broker failed.
   */
  private async lookInTurn(
    brokers: number[],
    topic: TopicDescriptor,
    group: GroupDescriptor,
    request: ReceiveRequest,
    signal: AbortSignal | undefined,
  ): Promise<ReceivedMessage[]> {
    const start = this.turn++;
    const found: ReceivedMessage[] = [];
    let bytes = 0;
    let failures = 0;
    let firstError: unknown;
    for (let i = 0; i < brokers.length && signal?.aborted !== true; i++) {
      const room = request.maxMessages - found.length;
      const bytesLeft =
        request.maxBodyBytes === undefined ? undefined : request.maxBodyBytes - bytes;
      // a broker answers at least one message: asked with less room than the largest body, it
      // could hand out one that does not fit, only for the gateway to give it back
      if (
        room <= 0 ||
        (bytesLeft !== undefined && found.length > 0 && bytesLeft < LARGEST_STORED_BODY)
      ) {
        break;
      }
      const look: ReceiveRequest = {
        ...request,
        maxMessages: room,
        waitMs: 0,
        ...(bytesLeft === undefined ? {} : { maxBodyBytes: bytesLeft }),
      };
      try {
        const brokerId = brokers[(start + i) % brokers.length];
        const got = await this.on(brokerId, (c) => c.receive(topic, group, look, signal));
        found.push(...got);
        for (const message of got) bytes += message.body.length;
      } catch (error) {
        failures++;
        firstError ??= error;
      }
    }
    if (found.length === 0 && failures === brokers.length) throw firstError;
    return found;
  }

  /**
   * Parks a call on every broker and answers with the first non-empty answer (plus any that
   * finished with it, up to `max`); the others are cancelled. What arrives past `max`, or after
   * the answer, goes to `release`. Fails only when every broker failed.
   */
  private async firstAnswer<T>(
    brokers: number[],
    call: (client: BrokerClient, signal: AbortSignal, brokerId: number) => Promise<T[]>,
    signal: AbortSignal | undefined,
    max: number,
    release?: (client: BrokerClient, extra: T[]) => Promise<void>,
    /** Offers that cannot be given back (checks): the answers of the calls cancelled by the
     *  first one still join, waited for up to this long (their max is each broker's share). */
    joinCancelledMs?: number,
  ): Promise<T[]> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const answers: T[] = [];
    let answered = false;
    let failures = 0;
    let firstError: unknown;
    try {
      await new Promise<void>((resolve) => {
        let settled = 0;
        const done = () => {
          if (++settled === brokers.length) resolve();
        };
        for (const brokerId of brokers) {
          this.on(brokerId, (c) => call(c, controller.signal, brokerId)).then(
            (found) => {
              if (found.length > 0) {
                const room = answered ? 0 : max - answers.length;
                answers.push(...found.slice(0, room));
                const extra = found.slice(Math.max(room, 0));
                if (extra.length > 0 && release !== undefined) {
                  const client = this.connections.get(brokerId)?.client;
                  if (client !== undefined) void release(client, extra);
                }
                if (!controller.signal.aborted) controller.abort(new Error('answered elsewhere'));
                if (joinCancelledMs !== undefined) {
                  // the others answer their cancel at once, with what they offered meanwhile
                  setTimeout(resolve, joinCancelledMs).unref();
                } else {
                  // answers that finished in the same turn still join; later ones are released
                  setImmediate(() => {
                    answered = true;
                    resolve();
                  });
                }
              }
              done();
            },
            (error: unknown) => {
              failures++;
              firstError ??= error;
              done();
            },
          );
        }
      });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    answered = true;
    if (answers.length === 0 && failures === brokers.length) throw firstError;
    return answers;
  }

  async ack(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandles: string[],
  ): Promise<AckResult[]> {
    // a broker down fails only its handles (ok: false, code Unavailable: their messages come
    // back after their invisibility); the others are acked and say so — a whole 503 would hide
    // that they were, and their retry would answer ReceiptHandleExpired. All down: 503.
    let answered = false;
    let failure: WharfError | undefined;
    const results = await this.byBroker(
      receiptHandles,
      (handle) => receiptHandleBrokerId(handle),
      (handle): AckResult => ({ receiptHandle: handle, ok: false, code: 'InvalidReceiptHandle' }),
      async (client, handles) => {
        const acked = await client.ack(topic, group, handles);
        answered = true;
        return acked;
      },
      (handles, error) => {
        if (!isWharfError(error) || error.code !== 'Unavailable') throw error;
        failure ??= error;
        return handles.map((handle): AckResult => ({
          receiptHandle: handle,
          ok: false,
          code: 'Unavailable',
        }));
      },
    );
    if (failure !== undefined && !answered) throw failure;
    return results;
  }

  async returnMessages(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandles: string[],
  ): Promise<void> {
    await this.byBroker(
      receiptHandles,
      (handle) => receiptHandleBrokerId(handle),
      () => undefined, // not a handle of a known broker: nothing to give back
      async (client, handles) => {
        await client.returnMessages(topic, group, handles);
        return handles.map(() => undefined);
      },
      undefined,
      // a broker stopping has given its lease up but still serves give-backs (rpc-server)
      true,
    );
  }

  /** Splits items by the broker they name, calls each once, answers in the items' order. */
  private async byBroker<I, R>(
    items: I[],
    brokerOf: (item: I) => number | null,
    unknown: (item: I) => R,
    call: (client: BrokerClient, items: I[]) => Promise<R[]>,
    /** The answers for a broker's items when its call failed; absent: the failure is thrown. */
    failed?: (items: I[], error: unknown) => R[],
    evenIfDown = false,
  ): Promise<R[]> {
    const results = new Array<R>(items.length);
    const groups = new Map<number, number[]>();
    items.forEach((item, i) => {
      const brokerId = brokerOf(item);
      if (brokerId === null || !this.connections.has(brokerId)) {
        results[i] = unknown(item);
        return;
      }
      const list = groups.get(brokerId) ?? [];
      list.push(i);
      groups.set(brokerId, list);
    });
    await Promise.all(
      [...groups].map(async ([brokerId, indexes]) => {
        const mine = indexes.map((i) => items[i]);
        let answers: R[];
        try {
          answers = await this.on(brokerId, (c) => call(c, mine), evenIfDown);
        } catch (error) {
          if (failed === undefined) throw error;
          answers = failed(mine, error);
        }
        answers.forEach((answer, k) => (results[indexes[k]] = answer));
      }),
    );
    return results;
  }

  changeVisibility(
    topic: TopicDescriptor,
    group: GroupDescriptor,
    receiptHandle: string,
    invisibleMs: number,
  ): Promise<VisibilityResult> {
    const brokerId = receiptHandleBrokerId(receiptHandle);
    if (brokerId === null || !this.connections.has(brokerId)) {
      return Promise.reject(new WharfError('InvalidReceiptHandle', 'receipt handle is not valid'));
    }
    return this.on(brokerId, (c) => c.changeVisibility(topic, group, receiptHandle, invisibleMs));
  }

  // ---- by message id ----

  async getMessage(topic: TopicDescriptor, messageId: string): Promise<MessageView> {
    const brokerId = this.brokerOfId(messageId, await this.holders(topic));
    return this.on(brokerId, (c) => c.getMessage(topic, messageId));
  }

  async cancelMessage(topic: TopicDescriptor, messageId: string): Promise<void> {
    const brokerId = this.brokerOfId(messageId, await this.holders(topic));
    return this.on(brokerId, (c) => c.cancelMessage(topic, messageId));
  }

  async trace(topic: TopicDescriptor, messageId: string): Promise<TraceEvent[]> {
    const brokerId = this.brokerOfId(messageId, await this.holders(topic));
    return this.on(brokerId, (c) => c.trace(topic, messageId));
  }

  async commitTransaction(
    topic: TopicDescriptor,
    transactionId: string,
    options?: TransactionDecisionOptions,
  ): Promise<void> {
    const brokerId = this.brokerOfId(transactionId, await this.holders(topic));
    return this.on(brokerId, (c) => c.commitTransaction(topic, transactionId, options));
  }

  async rollbackTransaction(
    topic: TopicDescriptor,
    transactionId: string,
    options?: TransactionDecisionOptions,
  ): Promise<void> {
    const brokerId = this.brokerOfId(transactionId, await this.holders(topic));
    return this.on(brokerId, (c) => c.rollbackTransaction(topic, transactionId, options));
  }

  async checkTransactions(
    topic: TopicDescriptor,
    request: TransactionCheckRequest,
    signal?: AbortSignal,
  ): Promise<CheckedMessage[]> {
    const brokers = await this.upHolders(topic);
    if (brokers.length === 1)
      return this.on(brokers[0], (c) => c.checkTransactions(topic, request, signal));
    // An offer counts against the half message's check limit whether or not the producer sees
    // it, and a broker's offers cannot be taken back: so each broker is asked for its share of
    // maxMessages only (together never more), and every answer is returned.
    const shares = shareOut(request.maxMessages, brokers, this.turn++);
    const asked = [...shares.keys()];
    // the byte budget too, evenly (each broker offers at least one)
    const bytes =
      request.maxBodyBytes === undefined
        ? {}
        : { maxBodyBytes: Math.floor(request.maxBodyBytes / asked.length) };
    // first a look at every broker without waiting: all of what they offer now comes back
    const now = await Promise.allSettled(
      asked.map((brokerId) =>
        this.on(brokerId, (c) =>
          c.checkTransactions(
            topic,
            { maxMessages: shares.get(brokerId) ?? 0, waitMs: 0, ...bytes },
            signal,
          ),
        ),
      ),
    );
    const failed = now.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length === now.length) throw failed[0].reason;
    const offered = now.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
    if (offered.length > 0 || request.waitMs <= 0) return offered;
    // then a wait on all of them: the first with offers answers; the others are cancelled, and
    // what they offered meanwhile (halves come due together) joins within its share, waited
    // for up to 1 s: an offer counts whether or not it reaches the producer
    return this.firstAnswer(
      asked,
      (client, s, brokerId) =>
        client.checkTransactions(
          topic,
          { maxMessages: shares.get(brokerId) ?? 0, waitMs: request.waitMs, ...bytes },
          s,
        ),
      signal,
      request.maxMessages,
      undefined,
      CHECK_JOIN_MS,
    );
  }

  // ---- fan-out ----

  /** `call` on each broker; Unavailable if any of them fails to answer. */
  private all<T>(brokers: number[], call: (client: BrokerClient) => Promise<T>): Promise<T[]> {
    return Promise.all(brokers.map((id) => this.on(id, call)));
  }

  async queryByKey(topic: TopicDescriptor, key: string, limit: number): Promise<MessageView[]> {
    const pages = await this.all(await this.holders(topic), (c) => c.queryByKey(topic, key, limit));
    // each broker's newest `limit`, newest first as one broker answers: the newest of them all
    return pages
      .flat()
      .sort((a, b) => b.publishTime - a.publishTime)
      .slice(0, limit);
  }

  async queryByTime(topic: TopicDescriptor, query: TimeQuery): Promise<MessagePage> {
    const holders = await this.holders(topic);
    return pageAcross(holders, query.cursor, query.limit, async (brokerId, cursor, limit) =>
      this.on(brokerId, (c) =>
        c.queryByTime(topic, { ...query, limit, ...(cursor === undefined ? {} : { cursor }) }),
      ).then((page) => ({ items: page.messages, nextCursor: page.nextCursor })),
    ).then(({ items, nextCursor }) => ({
      messages: items,
      ...(nextCursor === undefined ? {} : { nextCursor }),
    }));
  }

  async resetGroup(topic: TopicDescriptor, group: GroupDescriptor, to: ResetTarget): Promise<void> {
    await this.all(await this.holders(topic), (c) => c.resetGroup(topic, group, to));
  }

  async deadLetters(
    group: GroupDescriptor,
    limit: number,
    cursor?: string,
  ): Promise<{ messages: DeadLetter[]; nextCursor?: string }> {
    const brokers = [...this.connections.keys()].sort((a, b) => a - b);
    const page = await pageAcross(brokers, cursor, limit, (brokerId, inner, left) =>
      this.on(brokerId, (c) => c.deadLetters(group, left, inner)).then((p) => ({
        items: p.messages,
        nextCursor: p.nextCursor,
      })),
    );
    return {
      messages: page.items,
      ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }),
    };
  }

  resendDeadLetters(
    group: GroupDescriptor,
    messageIds: string[],
  ): Promise<{ messageId: string; ok: boolean; code?: string }[]> {
    return this.byBroker(
      messageIds,
      (id) => this.ids.brokerOf(id),
      (messageId) => ({ messageId, ok: false, code: 'MessageNotFound' }),
      (client, ids) => client.resendDeadLetters(group, ids),
    );
  }

  async topicStats(topic: TopicDescriptor): Promise<TopicStats> {
    const placement = await this.placement(topic);
    const holders = [...new Set(placement)].sort((a, b) => a - b);
    const stats = await this.all(holders, (c) => c.topicStats(topic));
    const byBroker = new Map(holders.map((id, i) => [id, stats[i]]));
    return {
      messagesIn: sum(stats.map((s) => s.messagesIn)),
      bytesIn: sum(stats.map((s) => s.bytesIn)),
      publishRatePerSecond: sum(stats.map((s) => s.publishRatePerSecond)),
      // a queue's offsets are those of the broker it lives on
      queues: placement.map(
        (brokerId, queueId) =>
          byBroker.get(brokerId)?.queues.find((q) => q.queueId === queueId) ?? {
            queueId,
            minOffset: 0,
            maxOffset: 0,
          },
      ),
      // unknown if any broker did not say (an earlier version)
      ...(stats.every((s) => s.consumingGroups !== undefined)
        ? { consumingGroups: [...new Set(stats.flatMap((s) => s.consumingGroups ?? []))].sort() }
        : {}),
    };
  }

  async groupStats(topic: TopicDescriptor, group: GroupDescriptor): Promise<GroupStats> {
    const holders = await this.holders(topic);
    // a group's dead letters are of all its topics (API.md: the same figure on each), and lie
    // on the brokers of those topics' queues: the other brokers are asked for theirs too, a
    // broker that does not answer left out (the topic's own figures need its holders, 503)
    const others = this.registeredBrokerIds().filter((id) => !holders.includes(id));
    const [stats, elsewhere] = await Promise.all([
      this.all(holders, (c) => c.groupStats(topic, group)),
      Promise.allSettled(others.map((id) => this.on(id, (c) => c.groupStats(topic, group)))),
    ]);
    const deadLettersElsewhere = sum(
      elsewhere.map((r) => (r.status === 'fulfilled' ? r.value.deadLetters : 0)),
    );
    return {
      backlog: sum(stats.map((s) => s.backlog)),
      inflight: sum(stats.map((s) => s.inflight)),
      oldestUnackedAgeMs: Math.max(0, ...stats.map((s) => s.oldestUnackedAgeMs)),
      deliveredRatePerSecond: sum(stats.map((s) => s.deliveredRatePerSecond)),
      ackedRatePerSecond: sum(stats.map((s) => s.ackedRatePerSecond)),
      retries: sum(stats.map((s) => s.retries)),
      deadLetters: sum(stats.map((s) => s.deadLetters)) + deadLettersElsewhere,
    };
  }

  async dropTopic(topic: TopicDescriptor): Promise<void> {
    const holders = await this.holders(topic).catch(() => this.registeredBrokerIds());
    await this.dropOn(holders, { kind: 'topic', topic }, (c) => c.dropTopic(topic));
    await this.options.placements.drop(topic);
    this.placed.delete(topicKey(topic));
  }

  async dropGroup(group: GroupDescriptor): Promise<void> {
    await this.dropOn(this.registeredBrokerIds(), { kind: 'group', group }, (c) =>
      c.dropGroup(group),
    );
  }

  async dropInstance(tenantId: string, instanceId: string): Promise<void> {
    await this.dropOn(this.registeredBrokerIds(), { kind: 'instance', tenantId, instanceId }, (c) =>
      c.dropInstance(tenantId, instanceId),
    );
  }

  private registeredBrokerIds(): number[] {
    return [...this.options.directory.brokers.keys()].sort((a, b) => a - b);
  }

  /** Runs a drop on each of `brokers` that is up; a broker that is down, or fails the drop (does
   *  not answer it, or a full disk refused it), is left the drop in Redis instead, to apply when
   *  it can (before it serves). Fails only when a drop cannot be left. */
  private async dropOn(
    brokers: readonly number[],
    target: DropTarget,
    call: (client: BrokerClient) => Promise<void>,
  ): Promise<void> {
    await Promise.all(
      brokers.map(async (brokerId) => {
        if (this.isUp(brokerId)) {
          try {
            return await this.on(brokerId, call);
          } catch (error) {
            return this.leaveDrop(brokerId, target, errorMessage(error));
          }
        }
        return this.leaveDrop(brokerId, target, 'down');
      }),
    );
  }

  private leaveDrop(brokerId: number, target: DropTarget, why: string): Promise<void> {
    return leaveDrop(this.options.drops, this.options.logger, brokerId, target, why);
  }

  /** Ready when at least one live broker answers ready; lists every registered broker. */
  async health(): Promise<BrokerHealth> {
    const entries = [...this.options.directory.brokers.values()].sort(
      (a, b) => a.brokerId - b.brokerId,
    );
    const brokers: BrokerReach[] = await Promise.all(
      entries.map(async (entry): Promise<BrokerReach> => {
        const reach = { id: entry.brokerId, address: entry.address };
        if (!entry.live) return { ...reach, state: 'down' };
        // one a call failed to reach lately: not asked again until its suspicion is over
        if (!this.isUp(entry.brokerId)) return { ...reach, state: 'unreachable' };
        const connection = this.connections.get(entry.brokerId);
        try {
          const health = await within(
            connection?.client.health() ?? Promise.resolve(undefined),
            HEALTH_MS,
          );
          return { ...reach, state: health?.ready === true ? 'ready' : 'not ready' };
        } catch {
          return { ...reach, state: 'unreachable' };
        }
      }),
    );
    const ready = brokers.some((b) => b.state === 'ready');
    return {
      ready,
      brokers,
      ...(ready ? {} : { detail: 'no broker is ready' }),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.connections.values()].map((c) => c.client.close()));
  }
}

/** `promise`, or a rejection once `ms` passed without its answer (the call itself goes on). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

function topicKey(topic: Pick<TopicDescriptor, 'tenantId' | 'instanceId' | 'topic'>): string {
  return `${topic.tenantId}/${topic.instanceId}/${topic.topic}`;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** `max` split over `brokers` (shares differ by one at most; who gets the remainder turns with
 *  `turn`), brokers with a share of 0 left out. */
/** The largest body a broker stores: a 4 MiB message, sealed (the store's record limit). */
const LARGEST_STORED_BODY = 4 * 1024 * 1024 + 64 * 1024;

/** How long a waiting check's answer waits for the offers of the brokers it cancelled. */
const CHECK_JOIN_MS = 1000;

export function shareOut(
  max: number,
  brokers: readonly number[],
  turn: number,
): Map<number, number> {
  const shares = new Map<number, number>();
  const n = brokers.length;
  for (let i = 0; i < n; i++) {
    const brokerId = brokers[(i + turn) % n];
    const share = Math.floor(max / n) + (i < max % n ? 1 : 0);
    if (share > 0) shares.set(brokerId, share);
  }
  return shares;
}

/** This process's part of every publish call id: unique among gateways without coordination. */
const REQUEST_ID_PREFIX = randomBytes(12).toString('base64url');
let requestCount = 0;

/** A publish call's id: the process's random prefix and a counter. */
function newRequestId(): string {
  return `${REQUEST_ID_PREFIX}.${(requestCount++).toString(36)}`;
}

/** Whether a publish call's stored messages can be withdrawn by a fence: a TRANSACTION topic's
 *  are half messages, outside the queues a fence scans. */
function canFence(topic: Pick<TopicDescriptor, 'messageType'>): boolean {
  return topic.messageType !== 'TRANSACTION';
}

function isUnavailable(error: unknown): boolean {
  return error instanceof WharfError && error.code === 'Unavailable';
}

/** The broker could not be reached (not merely busy): pass it over for a while. */
function isUnreachable(error: unknown): boolean {
  return (
    isUnavailable(error) &&
    /unreachable|connection to broker lost|missed its|client closed/.test(errorMessage(error))
  );
}

/**
 * Pages through brokers one after the other: a cursor is `<brokerId>.<the broker's cursor>`
 * (base64url of JSON, version 1), so nothing is skipped. A page takes up to `limit` items, from
 * the next brokers too once one has no more (a client that stops at a page shorter than `limit`
 * misses nothing); it ends where a broker's own page ends with a cursor of its.
 */
async function pageAcross<T>(
  brokers: number[],
  cursor: string | undefined,
  limit: number,
  page: (
    brokerId: number,
    cursor: string | undefined,
    limit: number,
  ) => Promise<{ items: T[]; nextCursor?: string }>,
): Promise<{ items: T[]; nextCursor?: string }> {
  let at = 0;
  let inner: string | undefined;
  if (cursor !== undefined) {
    const decoded = decodeClusterCursor(cursor);
    at = brokers.indexOf(decoded.brokerId);
    if (at < 0) throw new WharfError('InvalidArgument', 'cursor names a broker of no holder');
    inner = decoded.cursor;
  }
  const items: T[] = [];
  for (; at < brokers.length; at++, inner = undefined) {
    const result = await page(brokers[at], inner, limit - items.length);
    items.push(...result.items);
    if (result.nextCursor !== undefined) {
      return { items, nextCursor: encodeClusterCursor(brokers[at], result.nextCursor) };
    }
    if (items.length >= limit) {
      return at + 1 < brokers.length
        ? { items, nextCursor: encodeClusterCursor(brokers[at + 1]) }
        : { items };
    }
  }
  return { items };
}

const CLUSTER_CURSOR_VERSION = 1;

function encodeClusterCursor(brokerId: number, cursor?: string): string {
  return Buffer.from(
    JSON.stringify({
      v: CLUSTER_CURSOR_VERSION,
      b: brokerId,
      ...(cursor === undefined ? {} : { c: cursor }),
    }),
  ).toString('base64url');
}

function decodeClusterCursor(cursor: string): { brokerId: number; cursor?: string } {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (
    typeof value === 'object' &&
    value !== null &&
    'v' in value &&
    value.v === CLUSTER_CURSOR_VERSION &&
    'b' in value &&
    Number.isInteger(value.b) &&
    (!('c' in value) || typeof value.c === 'string')
  ) {
    const brokerId = value.b as number;
    return 'c' in value && typeof value.c === 'string'
      ? { brokerId, cursor: value.c }
      : { brokerId };
  }
  throw new WharfError('InvalidArgument', 'cursor is not valid');
}
