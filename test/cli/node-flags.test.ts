// Every way Wharf is launched gives node the same V8 flags (src/cli/node-flags.ts): the
// package.json start scripts on the command line, the image through NODE_OPTIONS, and each flag
// is one node itself accepts there (NODE_OPTIONS refuses most V8 flags).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

const ROOT = join(import.meta.dirname, '..', '..');

t.test('the start scripts run wharf with the flags', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  for (const name of ['start', 'start:gateway', 'start:broker']) {
    const script = pkg.scripts[name] ?? '';
    const launch = /node ((?:--\S+ )*)dist\/src\/cli\/wharf\.js/.exec(script);
    t.ok(launch, `${name} launches dist/src/cli/wharf.js`);
    t.same(launch?.[1]?.trim().split(' '), NODE_FLAGS, `${name}: the flags, in order`);
  }
});

t.test('the image sets the flags in NODE_OPTIONS', async (t) => {
  const dockerfile = readFileSync(join(ROOT, 'infra', 'Dockerfile'), 'utf8');
  const set = /NODE_OPTIONS=(?:"([^"]*)"|(\S+))/.exec(dockerfile);
  t.ok(set, 'NODE_OPTIONS is set');
  t.same((set?.[1] ?? set?.[2] ?? '').split(' '), NODE_FLAGS);
});

t.test('node accepts every flag in NODE_OPTIONS', async (t) => {
  const run = spawnSync(process.execPath, ['-e', 'process.exit(0)'], {
    env: { ...process.env, NODE_OPTIONS: NODE_FLAGS.join(' ') },
    encoding: 'utf8',
  });
  t.equal(run.status, 0, run.stderr);
});
