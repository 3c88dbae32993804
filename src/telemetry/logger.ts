// The process logger: pino, JSON lines when stdout is not a terminal (production, CI), readable
// colored lines through pino-pretty in a terminal. Secrets never reach it: the redaction list
// covers the headers and fields that carry them.
import { pino, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

export type { Logger } from 'pino';

export interface LoggerConfig {
  level?: string;
  /** Force readable output (default: when stdout is a TTY). */
  pretty?: boolean;
  name?: string;
}

export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'accessKeySecret',
  'secret',
  'adminToken',
  'masterKey',
];

export function createLogger(config: LoggerConfig = {}): Logger {
  const options: LoggerOptions = {
    level: config.level ?? 'info',
    name: config.name ?? 'wharf',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  if (config.pretty ?? process.stdout.isTTY === true) {
    // A synchronous stream in this thread: no worker, nothing lost at exit.
    return pino(
      options,
      pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true }),
    );
  }
  return pino(options);
}
