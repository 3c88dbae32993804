// A seal worker thread (started by SealWorkers): seals or opens the batches the event loop sends
// and answers each with the results, transferring the buffer back. A request that does not decode
// is answered with an error; an exception fails that batch only.
import { parentPort } from 'node:worker_threads';
import {
  SEAL_WORKER_READY,
  asBuffer,
  decodeSealRequest,
  openPacked,
  sealPacked,
  type SealAnswer,
} from './seal-batch.js';

const port = parentPort;
if (port === null) throw new Error('seal-worker runs as a worker thread');

port.on('message', (message: unknown) => {
  const request = decodeSealRequest(message);
  if (request === null) {
    const id = (message as { id?: unknown } | null)?.id;
    port.postMessage({ id: typeof id === 'number' ? id : -1, error: 'malformed seal request' });
    return;
  }
  let answer: SealAnswer;
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
    answer = {
      id: request.id,
      packed: buffer as ArrayBuffer,
      lengths: done.lengths,
      ...(done.digests === undefined ? {} : { digests: done.digests }),
    };
    port.postMessage(answer, [buffer as ArrayBuffer]);
  } catch (error) {
    answer = { id: request.id, error: error instanceof Error ? error.message : String(error) };
    port.postMessage(answer);
  }
});

// loaded and listening: start() waits for this, so no module loads after a broker serves
port.postMessage(SEAL_WORKER_READY);
