// A real full disk for fault tests: a tiny tmpfs mounted per test (skipped with the reason where
// mount is not permitted), and a filler that leaves a chosen number of bytes free.
import type { Test } from 'tap';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh tmpfs of `mib` MiB, unmounted at teardown; null (the test skipped with the reason)
 *  when mounting is not allowed here. */
export function mountTmpfs(t: Test, mib: number): string | null {
  const dir = fs.mkdtempSync(join(tmpdir(), 'wharf-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    fs.rmdirSync(dir);
    t.skip(`cannot mount a tmpfs here: ${String(err).split('\n')[0]}`, () => undefined);
    return null;
  }
  t.teardown(() => {
    execFileSync('umount', ['-l', dir]);
    fs.rmdirSync(dir);
  });
  return dir;
}

/** Writes zeros into `path` until `leaveBytes` stay free (0: until the file system refuses). */
export function fillDisk(path: string, leaveBytes = 0): void {
  const fd = fs.openSync(path, 'w');
  try {
    for (let chunk = 1024 * 1024; chunk >= 4096; chunk /= 2) {
      const buf = Buffer.alloc(chunk);
      for (;;) {
        const s = fs.statfsSync(path);
        if (s.bavail * s.bsize - chunk < leaveBytes) break;
        try {
          fs.writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          break;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
