/**
 * Power loss through walguard's public API, a bounded sample (the full exploration is
 * `npm run crash`, run-full.ts): crash states of recorded walguard workloads must keep every
 * acknowledged unit, hold no unit in part, pass `integrity_check`, keep submission order and
 * never show a rejected unit — under FULL. Under NORMAL the same checker must find lost
 * acknowledged units, which proves it can fail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExploreReport, exploreCrashStates, formatFailures } from './explore.js';
import { buildShim } from './recorder.js';
import { CrashReplayer } from './replay.js';
import { planUniqueStates } from './unique-plan.js';
import { checkBackups, recordWalguard, unitsOf, walguardWorkload } from './walguard-workloads.js';

let root: string;

beforeAll(() => {
  buildShim();
  root = mkdtempSync(join(tmpdir(), 'walguard-crash-wg-'));
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Every state passed: the message lists the first failures. */
function expectAllOk(report: ExploreReport): void {
  expect(report.ok, formatFailures(report)).toBe(report.states);
  expect(report.lostAcked).toBe(0);
  expect(report.partialUnits).toBe(0);
  expect(report.integrityFailed).toBe(0);
  expect(report.unreadable).toBe(0);
}

describe('power loss through walguard (synchronous=FULL)', () => {
  it('none of 1,000+ crash states of writes, deferred units, transactions and checkpoints loses an acknowledged unit or holds a partial one', async () => {
    const run = await recordWalguard(walguardWorkload('checkpoints'), { root, scale: 'sample' });
    const { summary } = run;
    expect(summary.synchronous).toBe(2);
    expect(summary.acked).toBeGreaterThan(100);
    expect(summary.deferred).toBeGreaterThan(20);
    expect(summary.checkpoints).toBeGreaterThan(0);
    expect(summary.maxBatchUnits).toBeGreaterThan(1);
    expect(summary.failedBatches).toEqual([]);
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    const specs = planUniqueStates(replayer, { target: 1050 });
    const report = exploreCrashStates({ replayer, specs });
    console.info(
      `walguard FULL: ${report.states} states (${report.duplicates} duplicates skipped) in ` +
        `${Math.round(report.elapsedMs)} ms, ${Math.round(report.statesPerSecond)} states/s`,
    );
    expect(report.states).toBeGreaterThanOrEqual(1000);
    expectAllOk(report);
    expect(report.outOfOrder).toBe(0);
    for (const n of Object.values(report.bySubset)) expect(n).toBeGreaterThan(50);
  });

  it('close() makes every deferred unit durable: the state after close holds them all', async () => {
    const run = await recordWalguard(walguardWorkload('mixed-deferred'), {
      root,
      scale: 'sample',
    });
    expect(run.status).toBe(0);
    const units = unitsOf(run);
    // The workload marks every deferred unit acknowledged once close() resolved.
    expect(units.deferred.length).toBeGreaterThan(20);
    expect(units.acked).toEqual(expect.arrayContaining(units.deferred));
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    // The last point with nothing pending applied: only what was synced.
    const last = exploreCrashStates({
      replayer,
      specs: [{ point: replayer.lastPoint, subset: { kind: 'none' } }],
    });
    expectAllOk(last);
    const sample = exploreCrashStates({
      replayer,
      specs: planUniqueStates(replayer, { target: 150 }),
    });
    expectAllOk(sample);
    expect(sample.rejectedPresent).toBe(0);
  });

  it('an encrypted database, checked with the key derived from its key file, loses nothing either', async () => {
    const run = await recordWalguard(walguardWorkload('encrypted'), { root, scale: 'sample' });
    expect(run.encryptionKey).toMatch(/^[0-9a-f]{64}$/);
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    const report = exploreCrashStates({
      replayer,
      encryptionKey: run.encryptionKey!,
      specs: planUniqueStates(replayer, { target: 100 }),
    });
    expect(report.states).toBe(100);
    expectAllOk(report);
  });

  it('backups taken mid-run are consistent and hold every unit acknowledged before them; the live database loses nothing', async () => {
    const run = await recordWalguard(walguardWorkload('backup'), {
      root,
      scale: 'sample',
      units: 120,
      extraArgs: ['--backup-every', '60'],
    });
    expect(run.summary.backups.length).toBe(2);
    for (const b of checkBackups(run)) {
      expect(b.required).toBeGreaterThan(0);
      expect(b.result.ok, `${b.path}: ${b.result.problems.join('; ')}`).toBe(true);
    }
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    expectAllOk(
      exploreCrashStates({ replayer, specs: planUniqueStates(replayer, { target: 120 }) }),
    );
  });
});

describe('power loss through walguard (synchronous=NORMAL)', () => {
  it('states stay consistent but some lose acknowledged units: the checker can fail', async () => {
    const run = await recordWalguard(walguardWorkload('normal-control'), {
      root,
      scale: 'sample',
    });
    expect(run.summary.synchronous).toBe(1);
    expect(run.summary.acked).toBe(150);
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    const report = exploreCrashStates({ replayer, plan: { maxStates: 400 } });
    expect(report.lostAcked).toBeGreaterThan(0);
    expect(report.maxLostAcked).toBeGreaterThan(1);
    expect(report.corrupt, formatFailures(report)).toBe(0);
  });
});
