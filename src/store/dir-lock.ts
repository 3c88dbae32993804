// An exclusive lock on a directory a process owns (a broker's store, a node's data dir): an OS
// lock (Linux open-file-description fcntl lock, flock on macOS) on `<dir>/lock`, held for as long
// as the descriptor is open, so it dies with the process — a SIGKILL never leaves a stale lock and
// there is no pid to guess about. The holder's pid is written into the file after locking, only
// so that the refusal can name it.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { WharfError } from '../errors.js';

export const LOCK_FILE = 'lock';

interface LockBinding {
  tryLock(fd: number): boolean;
}

function isLockBinding(value: unknown): value is LockBinding {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { tryLock?: unknown }).tryLock === 'function'
  );
}

let binding: LockBinding | undefined;

function lockBinding(): LockBinding {
  if (binding === undefined) {
    const loaded: unknown = createRequire(import.meta.url)('fs-native-extensions');
    if (!isLockBinding(loaded)) throw new Error('fs-native-extensions has no tryLock');
    binding = loaded;
  }
  return binding;
}

/** Thrown when another live process holds the lock; `holderPid` is null when unreadable. */
export class DirLockedError extends WharfError {
  constructor(
    readonly dir: string,
    readonly holderPid: number | null,
  ) {
    super(
      'DirLocked',
      `${dir} is in use by another Wharf process` +
        (holderPid === null ? '' : ` (pid ${holderPid})`) +
        ': one broker per data dir; stop it or choose another WHARF_DATA_DIR',
      { details: { dir, holderPid } },
    );
  }
}

export interface DirLock {
  readonly path: string;
  /** Releases the lock (closing the descriptor releases it). */
  release(): void;
}

function readHolderPid(fd: number): number | null {
  const buf = Buffer.alloc(32);
  let n = 0;
  try {
    n = fs.readSync(fd, buf, 0, buf.length, 0);
  } catch {
    return null;
  }
  const text = buf.subarray(0, n).toString('utf8').trim();
  return /^\d+$/.test(text) ? Number(text) : null;
}

/**
 * Takes the exclusive lock of `dir` now or throws DirLockedError (never waits). Synchronous on
 * purpose: nothing else may run in this process between the check and the first write.
 */
export function lockDir(dir: string): DirLock {
  const path = join(dir, LOCK_FILE);
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  let locked: boolean;
  try {
    locked = lockBinding().tryLock(fd);
  } catch (err) {
    fs.closeSync(fd);
    throw new WharfError('IoError', `cannot lock ${path}`, { cause: err });
  }
  if (!locked) {
    const holderPid = readHolderPid(fd);
    fs.closeSync(fd);
    throw new DirLockedError(dir, holderPid);
  }
  try {
    // Informational only (the lock is the descriptor): a full disk must not stop a locked start.
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${process.pid}\n`, 0);
  } catch {
    // The pid is only for the message of a refused second process.
  }
  let released = false;
  return {
    path,
    release: () => {
      if (released) return;
      released = true;
      fs.closeSync(fd);
    },
  };
}
