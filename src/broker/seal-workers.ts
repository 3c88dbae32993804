// Sealing and opening bodies off the event loop. AES-256-GCM through node:crypto needs a cipher
// object per body, which on the development machine costs ≈ 10 µs of the event loop to seal a
// 1 KiB body and ≈ 7 µs to open one (README, "Sealed bodies"). A few worker threads do it
// instead: a publish's bodies, or the envelopes a receive read that the opened-body cache did
// not hold, go packed in one transferred buffer (seal-batch.ts) and the results come back the
// same way, so the event loop spends a copy and two messages a batch and the cipher work runs
// on another core.
//
// A receive's batch to open goes at once to a thread that has none in flight; those asked while
// one is out wait, and all that waited go together, in one message, when its answer comes back
// (they would have waited in the thread's queue anyway). A draining loop asks 5–15 a turn, and
// each postMessage with its wake-up cost the loop 15–120 µs on the 2-core bench machine, more
// than packing the bodies. A publish's batch to seal goes at once whatever is in flight: held
// back the same way, publishes waited for a turn of the loop more, and the p50 of bench:e2e's
// paced publish-to-receive run rose by 40% (three interleaved pairs).
//
// Same envelope and key as inline (body-seal.ts); each thread draws its nonces from its own
// CSPRNG pool. A batch goes to the thread with the fewest bytes pending, unless it is small:
// handing a batch to a thread and taking its answer costs the event loop ≈ 25–35 µs and the
// caller ≈ 70–85 µs of wall time, more than sealing one or two 1 KiB bodies inline (≈ 13 µs
// each), so batches under `minBatchBytes` (default 4 KiB) are done inline. Never refused: past
// `maxPendingBytes` in flight, after close(), or when the thread holding it dies (it is replaced
// on the next batch), a batch is done inline instead — slower, same result.
import { Worker } from 'node:worker_threads';
import { WharfError } from '../errors.js';
import { bodyMd5 } from './body-md5.js';
import { openBody, sealBody } from './body-seal.js';
import {
  SEAL_WORKER_READY,
  decodeSealAnswers,
  packBodies,
  unpack,
  type CipherOp,
  type SealAnswer,
  type SealRequest,
  type SealRequests,
} from './seal-batch.js';

/** Sealed bodies: the envelope of each, and the MD5 of each plaintext (a publish's bodyMd5). */
export interface SealedBodies {
  envelopes: Buffer[];
  md5s: string[];
}

/** Seals bodies under one instance's key (BodyKeys uses it). */
export type BodySealer = (
  key: Buffer,
  aad: Buffer,
  bodies: readonly Buffer[],
) => Promise<SealedBodies>;
/** Opens envelopes under one instance's key; null for one that does not open. */
export type BodyOpener = (
  key: Buffer,
  aad: Buffer,
  envelopes: readonly Buffer[],
) => Promise<(Buffer | null)[]>;

export const sealInline: BodySealer = (key, aad, bodies) =>
  Promise.resolve({
    envelopes: bodies.map((body) => sealBody(key, body, aad)),
    md5s: bodies.map(bodyMd5),
  });

export const openInline: BodyOpener = (key, aad, envelopes) =>
  Promise.resolve(envelopes.map((envelope) => openBody(key, envelope, aad)));

/** What a batch gives back: one result per item (null: an envelope that does not open), and a
 *  seal's digests. */
interface Done {
  results: (Buffer | null)[];
  digests?: string[];
}

const sealDone = (key: Buffer, aad: Buffer, items: readonly Buffer[]): Promise<Done> =>
  sealInline(key, aad, items).then(({ envelopes, md5s }) => ({
    results: envelopes,
    digests: md5s,
  }));

const openDone = (key: Buffer, aad: Buffer, items: readonly Buffer[]): Promise<Done> =>
  openInline(key, aad, items).then((results) => ({ results }));

export interface SealWorkersOptions {
  threads: number;
  /** Bytes in flight to the threads before batches are done inline. Default 64 MiB. */
  maxPendingBytes?: number;
  /** Batches of fewer bytes are done inline (cheaper than a thread's round trip). Default
   *  DEFAULT_MIN_BATCH_BYTES. */
  minBatchBytes?: number;
  /** Told when a thread fails (it is replaced on the next batch). */
  onThreadError?: (error: Error) => void;
}

interface Pending {
  bytes: number;
  count: number;
  resolve(done: Done): void;
  reject(error: Error): void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  bytes: number;
  /** Called once nothing is pending (close() waits on it). */
  drained: (() => void)[];
  /** Resolves once the thread has loaded its module (or exited). */
  ready: Promise<void>;
  /** Opens not yet posted: asked while one was out, sent together when it is answered. */
  outbox: SealRequest[];
  /** The first request id of the message of opens awaiting its answer; null: none out. */
  opening: number | null;
  /** Whether the thread exited (its outbox is not posted: its batches were failed over). */
  exited: boolean;
}

// the worker's module beside this one: .ts when the sources run (tests), .js when built
const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './seal-worker.ts' : './seal-worker.js',
  import.meta.url,
);

/** Terminates `worker` and resolves on its exit. An idle worker is unref()'d, and an unref()'d
 *  worker's exit does not keep the process alive: without the ref() the process could end before
 *  the exit arrives, leaving the caller's await (a shutdown's, say) unfinished. */
function stop(worker: Worker): Promise<number> {
  worker.ref();
  return worker.terminate();
}

/** Below this many bytes a batch is sealed or opened inline. Measured on the development
 *  machine (one thread, batches of 1 KiB bodies, event-loop busy time a batch): 1 body 12.6 µs
 *  inline / 27.3 µs to a thread; 2: 26.9 / 38.5; 4: 53.2 / 26.3; 32: 341 / 53. */
export const DEFAULT_MIN_BATCH_BYTES = 4096;

export class SealWorkers {
  private readonly threads: (Thread | null)[];
  private readonly maxPendingBytes: number;
  private readonly minBatchBytes: number;
  private pendingBytes = 0;
  private nextId = 1;
  private closed = false;
  /** Batches done by the threads; inline (small, over the bound, or closed); inline after the
   *  thread holding them failed. */
  offloaded = 0;
  inline = 0;
  fallbacks = 0;
  /** Messages posted to the threads (each carries the batches of one turn). */
  posts = 0;

  constructor(private readonly options: SealWorkersOptions) {
    if (!Number.isInteger(options.threads) || options.threads < 1) {
      throw new RangeError('SealWorkers needs at least one thread');
    }
    this.threads = new Array<Thread | null>(options.threads).fill(null);
    this.maxPendingBytes = options.maxPendingBytes ?? 64 * 1024 * 1024;
    this.minBatchBytes = options.minBatchBytes ?? DEFAULT_MIN_BATCH_BYTES;
  }

  /** The seal function to hand BodyKeys. */
  readonly seal: BodySealer = async (key, aad, bodies) => {
    const { results, digests } = await this.run('seal', key, aad, bodies, sealDone);
    // a seal answers every body (NOT_OPENED is an open's answer only) and its digest
    if (results.some((envelope) => envelope === null) || digests === undefined) {
      throw new WharfError('Internal', 'sealing answered a missing envelope or digest');
    }
    return { envelopes: results as Buffer[], md5s: digests };
  };

  /** The open function to hand BodyKeys. */
  readonly open: BodyOpener = async (key, aad, envelopes) =>
    (await this.run('open', key, aad, envelopes, openDone)).results;

  private async run(
    op: CipherOp,
    key: Buffer,
    aad: Buffer,
    items: readonly Buffer[],
    inline: (key: Buffer, aad: Buffer, items: readonly Buffer[]) => Promise<Done>,
  ): Promise<Done> {
    let bytes = 0;
    for (const item of items) bytes += item.length;
    if (
      this.closed ||
      items.length === 0 ||
      bytes < this.minBatchBytes ||
      this.pendingBytes + bytes > this.maxPendingBytes
    ) {
      this.inline++;
      return inline(key, aad, items);
    }
    this.offloaded++;
    const thread = this.pick();
    const id = this.nextId++;
    const { packed, lengths } = packBodies(items);
    const request: SealRequest = {
      id,
      op,
      key: new Uint8Array(key),
      aad: new Uint8Array(aad),
      packed: packed.buffer as ArrayBuffer,
      lengths,
    };
    try {
      return await new Promise<Done>((resolve, reject) => {
        if (thread.pending.size === 0) thread.worker.ref();
        thread.pending.set(id, { bytes, count: items.length, resolve, reject });
        thread.bytes += bytes;
        this.pendingBytes += bytes;
        if (op === 'seal') this.post(thread, [request]);
        else {
          thread.outbox.push(request);
          if (thread.opening === null) this.postOpens(thread);
        }
      });
    } catch (error) {
      // the thread failed under this batch: the items were transferred (and are gone from
      // `packed`), but the callers' buffers are intact — done inline instead
      this.fallbacks++;
      this.options.onThreadError?.(error as Error);
      return inline(key, aad, items);
    }
  }

  /** Starts every thread and resolves once each has loaded its code (or failed: it is started
   *  again on the next batch), so the first publishes do not wait for a thread to boot and no
   *  module loads after the broker serves. */
  async start(): Promise<void> {
    await Promise.all(
      this.threads.map((thread, i) => {
        if (thread !== null || this.closed) return Promise.resolve();
        const started = this.spawn(i);
        this.threads[i] = started;
        return started.ready;
      }),
    );
  }

  /** Lets the batches in flight finish, then stops the threads; later batches are done inline. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.threads.map(async (thread, i) => {
        if (thread === null) return;
        if (thread.pending.size > 0) await new Promise<void>((done) => thread.drained.push(done));
        if (this.threads[i] === thread) this.threads[i] = null;
        await stop(thread.worker);
      }),
    );
  }

  private pick(): Thread {
    let best = -1;
    for (let i = 0; i < this.threads.length; i++) {
      const thread = this.threads[i];
      if (thread === null) {
        this.threads[i] = this.spawn(i);
        return this.threads[i] as Thread;
      }
      if (best < 0 || thread.bytes < (this.threads[best] as Thread).bytes) best = i;
    }
    return this.threads[best] as Thread;
  }

  /** Sends the thread the opens waiting for it, in one message. */
  private postOpens(thread: Thread): void {
    const requests = thread.outbox;
    thread.outbox = [];
    if (requests.length > 0 && this.post(thread, requests)) thread.opening = requests[0].id;
  }

  /** Sends `requests` to the thread in one message; false when it has exited (they were failed
   *  over with its other batches). */
  private post(thread: Thread, requests: SealRequest[]): boolean {
    if (thread.exited) return false;
    const message: SealRequests = { requests };
    this.posts++;
    thread.worker.postMessage(
      message,
      requests.map((request) => request.packed),
    );
    return true;
  }

  private spawn(index: number): Thread {
    const worker = new Worker(WORKER_URL);
    worker.unref();
    let up!: () => void;
    const ready = new Promise<void>((resolve) => (up = resolve));
    const thread: Thread = {
      worker,
      pending: new Map(),
      bytes: 0,
      drained: [],
      ready,
      outbox: [],
      opening: null,
      exited: false,
    };
    worker.once('exit', () => up());
    worker.on('message', (message: unknown) => {
      if (message === SEAL_WORKER_READY) up();
      else this.answered(thread, message);
    });
    worker.on('error', (error: Error) => this.options.onThreadError?.(error));
    worker.on('exit', (code) => {
      thread.exited = true;
      if (this.threads[index] === thread) this.threads[index] = null;
      const error = new WharfError('Internal', `seal worker thread exited (code ${code})`);
      for (const id of [...thread.pending.keys()]) this.settle(thread, id)?.reject(error);
    });
    return thread;
  }

  private answered(thread: Thread, message: unknown): void {
    const answers = decodeSealAnswers(message);
    if (answers === null) {
      // a thread that answers garbage is not trusted with more: on its exit its batches are
      // done inline
      void stop(thread.worker);
      return;
    }
    for (const answer of answers) this.settleAnswer(thread, answer);
    if (thread.opening !== null && answers.some((answer) => answer.id === thread.opening)) {
      thread.opening = null;
      this.postOpens(thread); // what waited meanwhile
    }
  }

  private settleAnswer(thread: Thread, answer: SealAnswer): void {
    const pending = this.settle(thread, answer.id);
    if (pending === undefined) return;
    if ('error' in answer) {
      pending.reject(new WharfError('Internal', `seal worker thread failed: ${answer.error}`));
      return;
    }
    if (answer.lengths.length !== pending.count) {
      pending.reject(new WharfError('Internal', 'seal worker thread answered the wrong count'));
      return;
    }
    pending.resolve({
      results: unpack(Buffer.from(answer.packed), answer.lengths),
      ...(answer.digests === undefined ? {} : { digests: answer.digests }),
    });
  }

  /** Forgets batch `id` of `thread` (its bytes no longer pending); the batch, if it was there. */
  private settle(thread: Thread, id: number): Pending | undefined {
    const pending = thread.pending.get(id);
    if (pending === undefined) return undefined;
    thread.pending.delete(id);
    thread.bytes -= pending.bytes;
    this.pendingBytes -= pending.bytes;
    if (thread.pending.size === 0) {
      thread.worker.unref();
      for (const done of thread.drained.splice(0)) done();
    }
    return pending;
  }
}
