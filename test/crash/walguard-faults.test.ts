/**
 * Fault injection through walguard (the walrec shim fails calls of the real process):
 * ENOSPC in the middle of a batch and EIO from the fsync of a batch's COMMIT. Each failed
 * batch must be rejected whole with walguard's code, never reported durable, invisible to a
 * fresh connection and to every crash state after the rejection, and the writer must go on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkState } from './checker.js';
import { type ExploreReport, exploreCrashStates, formatFailures } from './explore.js';
import type { FaultOp, Op } from './oplog.js';
import { buildShim } from './recorder.js';
import { CrashReplayer, type FailedSyncModel } from './replay.js';
import { planUniqueStates } from './unique-plan.js';
import {
  firstFault,
  recordWalguard,
  unitsOf,
  type WalguardRun,
  walguardWorkload,
} from './walguard-workloads.js';

let root: string;

beforeAll(() => {
  buildShim();
  root = mkdtempSync(join(tmpdir(), 'walguard-crash-faults-'));
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The failed batches and the rejected units agree: each unit of each failed batch was rejected with `code`. */
function expectWholeBatchesRejected(run: WalguardRun, code: string): number[] {
  const { summary } = run;
  expect(summary.failedBatches.length).toBeGreaterThanOrEqual(1);
  for (const batch of summary.failedBatches) {
    expect(batch.code).toBe(code);
    expect(batch.units).toBeGreaterThanOrEqual(2);
  }
  const rejected = summary.rejected.filter((r) => !r.planned);
  expect(rejected.map((r) => r.code)).toEqual(rejected.map(() => code));
  expect(rejected.length).toBe(summary.failedBatches.reduce((n, b) => n + b.units, 0));
  return rejected.map((r) => r.id);
}

/**
 * Up to `target` distinct crash states at every point from `from` to `to` (the failure and
 * the rejection: where a failed batch could reappear), several subsets each.
 */
function exploreRange(
  run: WalguardRun,
  from: number,
  to: number,
  target: number,
  failedSync: FailedSyncModel = 'retry',
): ExploreReport {
  const replayer = new CrashReplayer(run.ops, {
    snapshot: run.snapshot,
    model: 'strict',
    failedSync,
  });
  const last = Math.min(to, replayer.lastPoint);
  const points = Array.from({ length: last + 1 - from }, (_, i) => from + i);
  const specs = planUniqueStates(replayer, { points, target, maxRandomPerPoint: 3 });
  return exploreCrashStates({ replayer, specs });
}

/** Index of the first mark `text` in the log. */
const markIndex = (ops: readonly Op[], text: string) =>
  ops.findIndex((op) => op.kind === 'mark' && op.text === text);

describe('ENOSPC through walguard', () => {
  it('a disk that fills in the middle of a batch rejects every unit of it with DISK_FULL, shows none of them, stays intact, and takes writes again once space returns', async () => {
    const run = await recordWalguard(walguardWorkload('enospc'), { root, scale: 'sample' });
    const rejected = expectWholeBatchesRejected(run, 'DISK_FULL');

    // The fault hit a write of the WAL after the batch had already written part of it.
    const at = firstFault(run)!;
    const fault = run.ops[at] as FaultOp;
    expect(fault).toMatchObject({ kind: 'fault', call: 'write', errno: 28, path: 'db.sqlite-wal' });
    let lastSync = at;
    while (lastSync > 0 && run.ops[lastSync]!.kind !== 'fsync') lastSync--;
    const batchWrites = run.ops
      .slice(lastSync + 1, at)
      .filter((op) => op.kind === 'write' && op.path === 'db.sqlite-wal');
    expect(batchWrites.length).toBeGreaterThan(0);

    // Read back through a fresh connection of this process (the writer's is gone).
    const units = unitsOf(run);
    const now = checkState(run.dir, units);
    expect(now.ok, now.problems.join('\n')).toBe(true);
    expect(now.integrity).toEqual(['ok']);
    expect(now.rejectedPresent).toEqual([]);

    // Space came back: units submitted after the failure were acknowledged.
    const lastRejected = Math.max(...rejected);
    expect(units.acked.filter((id) => id > lastRejected).length).toBeGreaterThan(20);
    expect(run.summary.acked + rejected.length).toBe(120);

    // No crash state from the fault on (through the next commits) shows a rejected unit or
    // loses an acknowledged one.
    const lastReject = markIndex(run.ops, `reject ${lastRejected}`);
    const report = exploreRange(run, at, lastReject + 150, 300);
    expect(report.states).toBeGreaterThan(100);
    expect(report.ok, formatFailures(report)).toBe(report.states);
  });
});

describe('EIO from fsync through walguard', () => {
  it('a failed fsync at COMMIT rejects the batch with IO_ERROR, never acknowledges it, the writer reopens and goes on, and no later crash state shows the batch (the fence)', async () => {
    const run = await recordWalguard(walguardWorkload('eio-fsync'), { root, scale: 'sample' });
    const rejected = expectWholeBatchesRejected(run, 'IO_ERROR');
    expect(run.summary.failedBatches).toHaveLength(1);

    const at = firstFault(run)!;
    expect(run.ops[at]).toMatchObject({
      kind: 'fault',
      call: 'fsync',
      errno: 5,
      path: 'db.sqlite-wal',
    });
    // Never reported durable: no ack mark for a rejected unit, before or after.
    const units = unitsOf(run);
    expect(units.acked.filter((id) => rejected.includes(id))).toEqual([]);
    // The writer reopened its connection after the failure.
    expect(run.ops.slice(at).some((op) => op.kind === 'open' && op.path === 'db.sqlite')).toBe(
      true,
    );
    // And went on: every unit after the failed batch was acknowledged.
    const lastRejected = Math.max(...rejected);
    expect(units.acked.filter((id) => id > lastRejected).length).toBe(120 - lastRejected);

    // Every crash point from the fault through the next commits: the rejection is final once
    // reported.
    const firstReject = markIndex(run.ops, `reject ${rejected[0]}`);
    expect(firstReject).toBeGreaterThan(at);
    const report = exploreRange(run, at, firstReject + 150, 400);
    expect(report.states).toBeGreaterThan(200);
    expect(report.rejectedPresent, formatFailures(report)).toBe(0);
    expect(report.ok, formatFailures(report)).toBe(report.states);
  });

  it('units acknowledged after the writer recovered survive power loss even when the failed fsync lost the WAL tail written by deferred-only commits', async () => {
    // Linux (ext4, xfs) marks pages whose writeback failed as clean: the WAL frames of the
    // deferred-only (NORMAL) commits since the last fsync never reach the disk, while the page
    // cache still serves them. The fence and every later commit continue that WAL, so after a
    // power loss recovery stops at the hole and drops them — unless the writer makes the
    // committed state durable another way first (e.g. a TRUNCATE checkpoint after reopening).
    const workload = walguardWorkload('eio-fsync-deferred');
    const run = await recordWalguard(workload, { root, scale: 'sample' });
    const at = firstFault(run)!;
    expect(run.ops[at]).toMatchObject({ kind: 'fault', call: 'fsync', path: 'db.sqlite-wal' });
    const units = unitsOf(run);
    const lastRejected = Math.max(...run.summary.rejected.map((r) => r.id));
    const ackedAfter = units.acked.filter((id) => id > lastRejected);
    expect(ackedAfter.length).toBeGreaterThan(10);
    // Deferred-only commits left WAL frames unsynced when the fsync failed.
    let lastSync = at;
    while (lastSync > 0 && run.ops[lastSync]!.kind !== 'fsync') lastSync--;
    const between = run.ops.slice(lastSync + 1, at);
    expect(between.some((op) => op.kind === 'mark' && op.text.startsWith('defer '))).toBe(true);

    // Through the first acknowledgements after the recovery:
    const end = markIndex(run.ops, `ack ${ackedAfter[5]}`) + 1;
    // with the failed writes kept pending (they may still land), nothing is lost...
    const retry = exploreRange(run, at, end, 200, 'retry');
    expect(retry.ok, formatFailures(retry)).toBe(retry.states);
    // ...and with them lost, as Linux does, nothing acknowledged after the recovery may be.
    const drop = exploreRange(run, at, end, 200, workload.failedSync);
    expect(drop.lostAcked, formatFailures(drop)).toBe(0);
    expect(drop.ok, formatFailures(drop)).toBe(drop.states);
  });
});
