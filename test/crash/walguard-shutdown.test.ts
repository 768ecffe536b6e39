/**
 * The shutdown path the crash workloads end with: `await db.close()` in a script whose event
 * loop holds nothing else (the common "open, write, close, exit" script, and every workload
 * run with `--end close`). close() must resolve, the code after it must run, and the process
 * must exit 0 — not with Node's 13 ("unsettled top-level await").
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkState } from './checker.js';
import { REPO_ROOT } from './recorder.js';
import { WALGUARD_WORKLOAD } from './walguard-workloads.js';
import type { WalguardWorkloadSummary } from './workloads/walguard.js';

let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'walguard-shutdown-'));
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('close() at the end of a script', () => {
  it('resolves when nothing else keeps the event loop alive: the code after it runs and the process exits 0', () => {
    const failures: string[] = [];
    for (let run = 0; run < 3; run++) {
      const dir = join(root, `run${run}`);
      mkdirSync(dir);
      const child = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          WALGUARD_WORKLOAD,
          '--dir',
          dir,
          '--units',
          '20',
          '--mix',
          '1:1:0',
          '--end',
          'close',
        ],
        { cwd: REPO_ROOT, encoding: 'utf8' },
      );
      // Whatever the exit, what close() drained is on disk (it ran its checkpoint first).
      const check = checkState(dir, { acked: Array.from({ length: 20 }, (_, i) => i + 1) });
      expect(check.ok, check.problems.join('; ')).toBe(true);
      const line = child.stdout.trim().split('\n').pop() ?? '';
      if (child.status !== 0 || !line.startsWith('{')) {
        failures.push(
          `run ${run}: exit ${child.status ?? child.signal}, stdout ${JSON.stringify(line)}`,
        );
        continue;
      }
      expect((JSON.parse(line) as WalguardWorkloadSummary).end).toBe('close');
    }
    expect(failures).toEqual([]);
  });
});
