/**
 * Vitest global setup: the run's temporary folders live in one folder of its own, which is
 * removed at the end. Every test process inherits it as `TMPDIR`, so `os.tmpdir()` (and
 * `tempDir()` of test/helpers.ts) point into it. A test must still remove what it makes
 * (`tempDir()` does so by itself): what is left at the end is listed and fails the run,
 * then removed all the same.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  const base = os.tmpdir();
  const run = fs.mkdtempSync(path.join(base, 'walguard-test-run-'));
  // Traversable by other users (not listable): the PostgreSQL tests' server runs as the
  // `postgres` user in a folder of its own here (test/pg/cluster.ts).
  fs.chmodSync(run, 0o711);
  // tsx keeps its compile cache in `tsx-<uid>` under TMPDIR; the shared one stays warm
  // across runs (every child started with `--import tsx` would otherwise transform src/ anew).
  const tsxCache = `tsx-${os.userInfo().uid}`;
  fs.mkdirSync(path.join(base, tsxCache), { recursive: true });
  fs.symlinkSync(path.join(base, tsxCache), path.join(run, tsxCache), 'dir');
  process.env.TMPDIR = run;
  return () => {
    // A test killed before its afterEach leaves its small disk (test/durability/small-disk.ts)
    // mounted: unmount it, or the folder could not go (and counts as left behind below).
    const mounts = fs.existsSync('/proc/mounts') ? fs.readFileSync('/proc/mounts', 'utf8') : '';
    for (const line of mounts.split('\n')) {
      const point = line.split(' ')[1];
      if (point?.startsWith(`${run}/`)) spawnSync('umount', ['-l', point], { stdio: 'ignore' });
    }
    const left = fs.readdirSync(run).filter((name) => name !== tsxCache);
    fs.rmSync(run, { recursive: true, force: true });
    if (left.length > 0) {
      // Vitest reports an error thrown here but still exits 0; the exit code carries it.
      process.exitCode = 1;
      process.stderr.write(
        `\nFAIL: tests left ${left.length} temporary folder(s) behind (removed now): ${left.slice(0, 20).join(', ')}. Use tempDir() from test/helpers.ts.\n`,
      );
    }
  };
}
