/**
 * Power loss on walguard's recovery paths (issue 10), a bounded sample (`npm run crash` runs
 * the full rows): every crash state of a restore shows the old database or the restored one,
 * never nothing; every crash state of a first open reopens with all its acknowledged units;
 * and the WAL inspector takes no torn tail of the power-loss harness for damage (with a
 * control: the one-commit threshold it rejected does).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildShim } from './recorder.js';
import {
  exploreRecoveryInChildren,
  inspectWalStates,
  RECOVERY_KEY,
  type RecoveryReport,
  recordFirstOpen,
  recordRestore,
} from './recovery-states.js';
import { CrashReplayer } from './replay.js';
import { planUniqueStates } from './unique-plan.js';
import { recordWalguard, walguardWorkload } from './walguard-workloads.js';

let root: string;

beforeAll(() => {
  buildShim();
  root = mkdtempSync(join(tmpdir(), 'walguard-crash-recovery-'));
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const failures = (report: RecoveryReport) =>
  report.failures
    .slice(0, 5)
    .map((f) => `K=${f.point} ${f.subset}: ${f.problems.join(' | ')}`)
    .join('\n');

describe('power loss during a restore', () => {
  it('every crash state shows the old database (file and WAL) or the restored one, and then the old one whole in quarantine; never nothing, never a mix', async () => {
    const run = recordRestore(root, { units: 40, backupAt: 15 });
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    const specs = planUniqueStates(replayer, { target: 100, points: 'every' });
    const report = await exploreRecoveryInChildren(run, specs, { work: join(root, 'work') });
    expect(report.ok, failures(report)).toBe(report.states);
    expect(report.states).toBeGreaterThan(50);
    expect(report.shows.old).toBeGreaterThan(10);
    expect(report.shows.restored).toBeGreaterThan(10);
    expect(report.shows.nothing).toBe(0);
  }, 300_000);

  it('the same for an encrypted database (with the ext4-like model too)', async () => {
    const run = recordRestore(root, { units: 30, backupAt: 10, key: RECOVERY_KEY });
    for (const model of ['strict', 'ext4-like'] as const) {
      const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model });
      const specs = planUniqueStates(replayer, { target: 40, points: 'every' });
      const report = await exploreRecoveryInChildren(run, specs, {
        work: join(root, `work-enc-${model}`),
        model,
      });
      expect(report.ok, `${model}: ${failures(report)}`).toBe(report.states);
      expect(report.shows.old + report.shows.restored).toBe(report.states);
      expect(report.shows.restored).toBeGreaterThan(0);
    }
  }, 300_000);
});

describe('power loss during a first open', () => {
  it('every crash state of a new database’s first open and first writes reopens, with every acknowledged unit', async () => {
    const run = recordFirstOpen(root, { units: 4 });
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    // Every op is a crash point; a spread sample of them (the full set: npm run crash).
    const specs = planUniqueStates(replayer, { target: 24, points: 'every' });
    const report = await exploreRecoveryInChildren(run, specs, { work: join(root, 'work-open') });
    expect(report.ok, failures(report)).toBe(report.states);
    expect(report.shows.opened).toBe(report.states);
    expect(report.states).toBe(24);
  }, 600_000);
});

describe('the WAL inspector and torn tails', () => {
  it('flags no crash state of a deferred-heavy workload as damaged; the rejected one-commit threshold would', async () => {
    const run = await recordWalguard(walguardWorkload('eio-fsync-deferred'), {
      root,
      scale: 'sample',
    });
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, failedSync: 'drop' });
    const specs = planUniqueStates(replayer, { target: 2000, points: 'every' });
    const report = await inspectWalStates(replayer, specs, {
      walFile: 'db.sqlite-wal',
      control: 1,
    });
    expect(report.withFrames).toBeGreaterThan(1500);
    expect(report.flagged).toBe(0);
    expect(report.flaggedByControl, JSON.stringify(report)).toBeGreaterThan(0);
  }, 300_000);
});
