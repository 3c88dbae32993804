// Delivery of alarm notifications through BullMQ on the node's Redis: the evaluator enqueues one
// job per transition (its id makes a repeated enqueue a no-op), a worker POSTs it to the alarm's
// current webhook, signed with the alarm's secret, retrying with exponential back-off and a
// deadline per attempt. Each attempt is written to the alarm's history. Nothing here is on a
// message path: a slow or failing receiver only holds a worker slot (bounded by concurrency).
import { hostname } from 'node:os';
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { MetaStore } from '../meta/index.js';
import type { Logger } from '../telemetry/index.js';
import { decodeNotificationJob, notificationJobId, type NotificationJob } from './notification.js';
import { postWebhook, WebhookError } from './webhook-sender.js';

export const QUEUE_NAME = 'alarm-webhooks';

/** How long a close waits for BullMQ (which waits for Redis) before it drops the connections. */
const CLOSE_TIMEOUT_MS = 3000;

export type DeliveryOutcome = 'delivered' | 'failed' | 'refused' | 'dropped';

export interface AlarmNotifierOptions {
  redisUrl: string;
  meta: MetaStore;
  logger: Logger;
  /** Allow webhooks to private, loopback and link-local addresses (WHARF_WEBHOOK_ALLOW_PRIVATE). */
  allowPrivate: boolean;
  /** Attempts per notification, the first included (default 8). */
  attempts?: number;
  /** The first retry's delay; each next one doubles (default 2000 ms). */
  backoffMs?: number;
  /** Deadline of one attempt (default 5000 ms). */
  timeoutMs?: number;
  /** Deliveries in flight on this node (default 16). */
  concurrency?: number;
  /** Run a worker here (default true); false: only enqueue. */
  worker?: boolean;
  onDelivery?: (outcome: DeliveryOutcome) => void;
}

export class AlarmNotifier {
  private readonly queueConnection: Redis;
  private workerConnection: Redis | undefined;
  private readonly queue: Queue;
  private worker: Worker | undefined;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: AlarmNotifierOptions) {
    this.attempts = options.attempts ?? 8;
    this.backoffMs = options.backoffMs ?? 2000;
    this.timeoutMs = options.timeoutMs ?? 5000;
    // Enqueuing gives up after a deadline while Redis is away (the evaluator, which has not
    // stored the transition, makes it again at its next tick).
    this.queueConnection = new Redis(options.redisUrl, {
      connectionName: 'wharf-alarm-queue',
      maxRetriesPerRequest: 1,
      commandTimeout: 5000,
    });
    this.queueConnection.on('error', () => undefined);
    this.queue = new Queue(QUEUE_NAME, {
      connection: this.queueConnection,
      prefix: options.meta.keys.jobs(),
      skipWaitingForReady: true,
    });
    this.queue.on('error', () => undefined);
  }

  async start(): Promise<void> {
    await this.queue.waitUntilReady();
    if (this.options.worker === false) return;
    // BullMQ's worker blocks on its connection: no per-command deadline, retried for ever.
    this.workerConnection = new Redis(this.options.redisUrl, {
      connectionName: `wharf-alarm-worker-${hostname()}-${process.pid}`,
      maxRetriesPerRequest: null,
    });
    this.workerConnection.on('error', () => undefined);
    this.worker = new Worker(QUEUE_NAME, (job: Job) => this.deliver(job), {
      connection: this.workerConnection,
      prefix: this.options.meta.keys.jobs(),
      concurrency: this.options.concurrency ?? 16,
      // A delivery never runs past its deadline: the lock outlives it by a margin.
      lockDuration: this.timeoutMs + 30_000,
    });
    this.worker.on('error', (err) =>
      this.options.logger.warn({ err }, 'alarm webhook worker error'),
    );
  }

  /** Adds the notification to the queue; a notification already there is not added again. */
  async enqueue(job: NotificationJob): Promise<void> {
    await this.queue.add('notify', job, {
      jobId: notificationJobId(job),
      attempts: this.attempts,
      backoff: { type: 'exponential', delay: this.backoffMs },
      // Kept a while after they end, so that a repeated enqueue is recognised (not re-sent).
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
    });
  }

  /** Stops the worker (a delivery under way finishes) and the queue. BullMQ's close waits for
   *  Redis: with Redis away it is given CLOSE_TIMEOUT_MS, then the connections are dropped (a
   *  delivery cut short is retried by the next node, as after a crash). */
  async close(): Promise<void> {
    const closing = (async () => {
      await this.worker?.close();
      await this.queue.close();
    })();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)));
    await Promise.race([closing.catch(() => undefined), late]);
    clearTimeout(timer);
    this.workerConnection?.disconnect();
    this.queueConnection.disconnect();
  }

  /** The highest notification of the alarm a receiver acknowledged (its history's deliveries). */
  private async deliveredUpTo(
    tenantId: string,
    instanceId: string,
    alarmId: string,
  ): Promise<number> {
    const events = await this.options.meta.alarmStates.history(tenantId, instanceId, alarmId);
    let highest = 0;
    for (const event of events) {
      if (event.type === 'delivery' && event.ok === true) highest = Math.max(highest, event.seq);
    }
    return highest;
  }

  private async deliver(job: Job): Promise<void> {
    const { meta, logger } = this.options;
    const data = decodeNotificationJob(job.data);
    if (data === null) {
      logger.error({ jobId: job.id }, 'alarm notification job with unreadable data: dropped');
      this.options.onDelivery?.('dropped');
      return;
    }
    const { tenantId, instanceId, alarmId, seq } = data;
    const alarm = await meta.alarms.get(tenantId, instanceId, alarmId);
    const secret = await meta.alarms.webhookSecret(tenantId, instanceId, alarmId);
    if (alarm === null || secret === null || alarm.createdAt !== data.alarmCreatedAt) {
      this.options.onDelivery?.('dropped');
      return;
    }
    const attempt = job.attemptsMade + 1;
    const record = (fields: { ok: boolean; status?: number; error?: string }) =>
      meta.alarmStates
        .record(alarm, { event: { type: 'delivery', time: Date.now(), seq, attempt, ...fields } })
        .catch((err: unknown) => logger.warn({ err }, 'could not record a delivery attempt'));
    // a later notification of the alarm was delivered already (a firing still retried when its
    // resolution got through): sent now, this one would leave the receiver with a state the alarm
    // has left. One only queued after it is still sent: it goes first, the later one corrects it.
    const delivered = await this.deliveredUpTo(tenantId, instanceId, alarmId);
    if (delivered > seq) {
      await record({ ok: false, error: `superseded by notification ${delivered}, delivered` });
      this.options.onDelivery?.('dropped');
      return;
    }
    try {
      const status = await postWebhook({
        url: alarm.webhookUrl,
        body: data.body,
        secret,
        timeoutMs: this.timeoutMs,
        allowPrivate: this.options.allowPrivate,
      });
      await record({ ok: true, status });
      this.options.onDelivery?.('delivered');
    } catch (err) {
      const failure =
        err instanceof WebhookError ? err : new WebhookError(String(err), false, undefined);
      await record({
        ok: false,
        ...(failure.status === undefined ? {} : { status: failure.status }),
        error: failure.message,
      });
      this.options.onDelivery?.(failure.permanent ? 'refused' : 'failed');
      logger.info(
        { tenantId, instanceId, alarmId, seq, attempt, err: failure.message },
        'alarm webhook attempt failed',
      );
      if (failure.permanent) throw new UnrecoverableError(failure.message);
      throw failure;
    }
  }
}
