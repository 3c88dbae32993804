// A seal worker thread (started by SealWorkers): seals or opens the batches the event loop sends,
// all it asked in one turn arriving in one message, and answers them in one message, transferring
// the result buffers back. A request that does not decode is answered with an error; an
// exception fails that batch only.
import { parentPort } from 'node:worker_threads';
import { errorMessage } from '../errors.js';
import {
  SEAL_WORKER_READY,
  asBuffer,
  decodeSealRequest,
  openPacked,
  requestsOf,
  sealPacked,
  type SealAnswer,
  type SealAnswers,
} from './seal-batch.js';

const port = parentPort;
if (port === null) throw new Error('seal-worker runs as a worker thread');

/** The answer to one request, and the buffer it transfers (none for an error). */
function answer(message: unknown): { answer: SealAnswer; transfer?: ArrayBuffer } {
  const request = decodeSealRequest(message);
  if (request === null) {
    const id = (message as { id?: unknown } | null)?.id;
    return { answer: { id: typeof id === 'number' ? id : -1, error: 'malformed seal request' } };
  }
  try {
    const args = [
      asBuffer(request.key),
      asBuffer(request.aad),
      Buffer.from(request.packed),
      request.lengths,
    ] as const;
    const done: { packed: Buffer; lengths: number[]; digests?: string[] } =
      request.op === 'seal' ? sealPacked(...args) : openPacked(...args);
    const { buffer, byteOffset, byteLength } = done.packed;
    // allocUnsafeSlow: the ArrayBuffer is the results' own, whole
    if (byteOffset !== 0 || byteLength !== buffer.byteLength) throw new Error('packed view');
    return {
      answer: {
        id: request.id,
        packed: buffer as ArrayBuffer,
        lengths: done.lengths,
        ...(done.digests === undefined ? {} : { digests: done.digests }),
      },
      transfer: buffer as ArrayBuffer,
    };
  } catch (error) {
    return {
      answer: { id: request.id, error: errorMessage(error) },
    };
  }
}

port.on('message', (message: unknown) => {
  const requests = requestsOf(message);
  if (requests === null) {
    // not a batch: answered as one malformed request, so its id (if any) is not left waiting
    port.postMessage({ answers: [answer(message).answer] } satisfies SealAnswers);
    return;
  }
  const done = requests.map(answer);
  const reply: SealAnswers = { answers: done.map((one) => one.answer) };
  port.postMessage(
    reply,
    done.flatMap((one) => (one.transfer === undefined ? [] : [one.transfer])),
  );
});

// loaded and listening: start() waits for this, so no module loads after a broker serves
port.postMessage(SEAL_WORKER_READY);
