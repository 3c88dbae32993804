// A Redis connection whose command deadline survives a stalled event loop. ioredis's own
// commandTimeout and socketTimeout are plain timers: once the loop stood still past them (a long
// GC pause, an overloaded machine), the timers phase runs before the poll phase that reads the
// replies already waiting on the socket, so every command in flight failed "Command timed out",
// and the socket was dropped, although Redis had answered — 503s for calls that could have been
// served. Here a deadline that passes looks once more after the waiting I/O is read (setImmediate
// runs after the poll phase): only a command still unanswered then fails. A socket that stayed
// silent for twice the deadline after a command was sent is dropped (a stalled server, a peer
// gone without RST), so the commands after it fail at once until a reconnect succeeds.
import type { Socket as NetStream } from 'node:net';
import { Redis, type Command, type RedisOptions } from 'ioredis';

export class DeadlineRedis extends Redis {
  /** When the socket last brought data (monotonic ms). */
  private lastDataMs = performance.now();

  constructor(
    url: string,
    /** ioredis's options, less its own deadlines (this class's) and RESP3 reply mapping. */
    options: Omit<RedisOptions, 'commandTimeout' | 'socketTimeout' | 'replyMapping'>,
    private readonly deadlineMs: number,
  ) {
    super(url, options);
    this.on('connect', () => {
      this.lastDataMs = performance.now();
      this.stream.on('data', () => {
        this.lastDataMs = performance.now();
      });
    });
  }

  override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    const sent = super.sendCommand(command, stream);
    if (!command.isSettled) this.armDeadline(command);
    return sent;
  }

  private armDeadline(command: Command): void {
    const sentMs = performance.now();
    // the socket the command went on: a reconnect's is not dropped for it
    const sentOn = this.stream as NetStream | undefined;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (command.isSettled) return;
        command.reject(new Error('Command timed out'));
        // the socket is kept for one deadline more: a caller undoing a timed-out write sends
        // the undo on it, after the write (Redis runs both, in order, once it goes on)
        const drop = setTimeout(() => {
          setImmediate(() => {
            if (this.lastDataMs > sentMs || sentOn === undefined || this.stream !== sentOn) return;
            sentOn.destroy(
              new Error(
                `Socket timeout: no data for ${2 * this.deadlineMs} ms with a command waiting`,
              ),
            );
          });
        }, this.deadlineMs);
        drop.unref();
      });
    }, this.deadlineMs);
    timer.unref();
    const clear = (): void => clearTimeout(timer);
    command.promise.then(clear, clear);
  }
}
