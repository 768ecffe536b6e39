import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { WalguardError } from '../../src/errors.js';
import type { BatchReply, WireUnit } from '../../src/queue/protocol.js';
import { type BatchInfo, WriteQueue, type WriteQueueLimits } from '../../src/queue/write-queue.js';
import type { Unit } from '../../src/tx/unit.js';
import { delay } from '../helpers.js';

const limits: WriteQueueLimits = {
  maxBatchUnits: 1000,
  maxBatchBytes: 1 << 20,
  maxPendingUnits: 10_000,
  maxPendingBytes: 1 << 24,
  maxWaitingCallers: 1000,
  queueTimeoutMs: 1000,
  lingerMs: 0,
  deferredFlushMs: 50,
};

/** A stand-in writer that records batches and takes `commitMs` to commit each. */
function fakeRunner(commitMs = 5) {
  const batches: { ids: number[]; durable: boolean }[] = [];
  return {
    batches,
    async runBatch(units: WireUnit[], durable: boolean): Promise<BatchReply> {
      batches.push({
        ids: units.map((u) => (u.kind === 'statements' ? Number(u.statements[0]!.sql) : -1)),
        durable,
      });
      await delay(commitMs);
      return {
        outcomes: units.map(() => ({ ok: true as const, results: [] })),
        commitMs,
      };
    },
  };
}

/** `callers` callers that each write `rounds` units in turn, awaiting each (a closed loop). */
async function closedLoop(q: WriteQueue, callers: number, rounds: number): Promise<void> {
  let next = 0;
  const caller = async () => {
    for (let round = 0; round < rounds; round++) {
      const { u, done } = unit(next++);
      q.add(u);
      await done;
    }
  };
  await Promise.all(Array.from({ length: callers }, caller));
}

function unit(id: number, critical = true, bytes = 10) {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const u: Unit = {
    wire: { kind: 'statements', statements: [{ sql: String(id), params: [] }] },
    critical,
    bytes,
    ticket: 0,
    submittedAt: performance.now(),
    resolve: () => resolve(),
    reject: (e) => reject(e),
  };
  return { u, done };
}

describe('WriteQueue', () => {
  it('group-commits everything queued while a commit is in flight', async () => {
    const runner = fakeRunner(10);
    const q = new WriteQueue(limits, runner, () => {});
    const units = Array.from({ length: 300 }, (_, i) => unit(i));
    for (const { u } of units) expect(q.add(u)).toBeUndefined();
    await Promise.all(units.map((x) => x.done));
    // The first batch takes what was queued when the writer became free: all 300.
    expect(runner.batches.length).toBeLessThanOrEqual(2);
    expect(runner.batches.flatMap((b) => b.ids)).toEqual(units.map((_, i) => i));
    expect(q.stats.units).toBe(300);
  });

  it("on a slow commit, waits for the last batch's callers and commits them together", async () => {
    // 128 callers that each await their write, 4 rounds. Settling 128 callers takes far
    // less than a 40 ms commit, so every round should be one batch: no caller left behind
    // to start a half-size batch of its own (which pipelining would do).
    const runner = fakeRunner(40);
    await closedLoop(new WriteQueue(limits, runner, () => {}), 128, 4);
    expect(runner.batches.map((b) => b.ids.length)).toEqual([128, 128, 128, 128]);
  });

  it('on a fast commit, starts the next batch at once instead of idling the writer', async () => {
    // commitMs 0 (a free fsync): settling costs more than committing, so the queued units
    // go to the writer straight from the reply. Callers then alternate in two groups.
    const runner = fakeRunner(0);
    await closedLoop(new WriteQueue(limits, runner, () => {}), 128, 6);
    expect(runner.batches.flatMap((b) => b.ids).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 768 }, (_, i) => i),
    );
    expect(runner.batches.length).toBeGreaterThan(6);
  });

  it('never puts more than maxBatchUnits in a batch and keeps submission order', async () => {
    const runner = fakeRunner(1);
    const q = new WriteQueue({ ...limits, maxBatchUnits: 7 }, runner, () => {});
    const units = Array.from({ length: 50 }, (_, i) => unit(i, i % 3 !== 0));
    for (const { u } of units) q.add(u);
    await q.drain();
    expect(Math.max(...runner.batches.map((b) => b.ids.length))).toBeLessThanOrEqual(7);
    expect(runner.batches.flatMap((b) => b.ids)).toEqual(units.map((_, i) => i));
  });

  it('respects maxBatchBytes but still runs a single oversized unit alone', async () => {
    const runner = fakeRunner(1);
    const q = new WriteQueue(
      { ...limits, maxBatchBytes: 2048, maxPendingBytes: 4096 },
      runner,
      () => {},
    );
    const big = unit(0, true, 10_000);
    const small = Array.from({ length: 10 }, (_, i) => unit(i + 1, true, 500));
    q.add(big.u);
    for (const { u } of small) await q.add(u);
    await Promise.all([big.done, ...small.map((s) => s.done)]);
    expect(runner.batches[0]!.ids).toEqual([0]);
    for (const b of runner.batches.slice(1)) expect(b.ids.length * 500).toBeLessThanOrEqual(2048);
  });

  it('commits a batch of deferred units only without its own fsync, and waits deferredFlushMs for it', async () => {
    const runner = fakeRunner(1);
    const q = new WriteQueue(limits, runner, () => {});
    const started = performance.now();
    const d = unit(1, false);
    q.add(d.u);
    await d.done;
    expect(performance.now() - started).toBeGreaterThanOrEqual(40);
    expect(runner.batches).toEqual([{ ids: [1], durable: false }]);
    expect(q.stats.relaxedCommits).toBe(1);
  });

  it('a critical unit flushes the deferred units queued before it, in order, durably', async () => {
    const runner = fakeRunner(1);
    const q = new WriteQueue({ ...limits, deferredFlushMs: 10_000 }, runner, () => {});
    const deferred = [unit(1, false), unit(2, false)];
    for (const { u } of deferred) q.add(u);
    const critical = unit(3, true);
    q.add(critical.u);
    await critical.done;
    await Promise.all(deferred.map((d) => d.done));
    expect(runner.batches).toEqual([{ ids: [1, 2, 3], durable: true }]);
  });

  it('makes callers wait past maxPendingUnits, then admits them in order', async () => {
    const runner = fakeRunner(20);
    const q = new WriteQueue({ ...limits, maxPendingUnits: 5, maxBatchUnits: 5 }, runner, () => {});
    const units = Array.from({ length: 30 }, (_, i) => unit(i));
    const admissions = units.map(({ u }) => q.add(u));
    expect(admissions.filter((a) => a === undefined).length).toBe(5);
    expect(q.pending).toBe(30);
    await Promise.all(admissions);
    await Promise.all(units.map((x) => x.done));
    expect(runner.batches.flatMap((b) => b.ids)).toEqual(units.map((_, i) => i));
  });

  it('turns callers away with QUEUE_FULL after queueTimeoutMs, and at once past maxWaitingCallers', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const runner = {
      async runBatch(units: WireUnit[]): Promise<BatchReply> {
        await gate;
        return { outcomes: units.map(() => ({ ok: true as const, results: [] })), commitMs: 0 };
      },
    };
    const q = new WriteQueue(
      { ...limits, maxPendingUnits: 1, maxBatchUnits: 1, queueTimeoutMs: 30, maxWaitingCallers: 1 },
      runner,
      () => {},
    );
    q.add(unit(0).u); // taken by the (blocked) batch
    await delay(5);
    q.add(unit(1).u); // fills the FIFO
    const waiting = q.add(unit(2).u);
    const refused = q.add(unit(3).u);
    await expect(refused).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    await expect(waiting).rejects.toBeInstanceOf(WalguardError);
    await expect(waiting).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    expect(q.stats.queueFull).toBe(2);
    release();
    await q.drain();
  });

  it('rejects every unit of a failed batch and reports it', async () => {
    const infos: BatchInfo[] = [];
    const runner = {
      async runBatch(units: WireUnit[]): Promise<BatchReply> {
        const error = { kind: 'walguard' as const, code: 'DISK_FULL', message: 'full' };
        return { outcomes: units.map(() => ({ ok: false as const, error })), error, commitMs: 1 };
      },
    };
    const q = new WriteQueue(limits, runner, (i) => infos.push(i));
    const units = [unit(1), unit(2), unit(3)];
    for (const { u } of units) q.add(u);
    for (const { done } of units) await expect(done).rejects.toMatchObject({ code: 'DISK_FULL' });
    expect(q.stats.failedBatches).toBe(infos.length);
    expect(infos.reduce((n, i) => n + i.units, 0)).toBe(3);
    expect(q.stats.failedUnits).toBe(3);
    expect(q.stats.commits).toBe(0);
    expect(infos[0]!.error).toBeInstanceOf(WalguardError);
  });

  it('exclusive tasks never overlap a batch', async () => {
    let running = 0;
    let overlap = false;
    const runner = {
      async runBatch(units: WireUnit[]): Promise<BatchReply> {
        running++;
        await delay(5);
        running--;
        return { outcomes: units.map(() => ({ ok: true as const, results: [] })), commitMs: 5 };
      },
    };
    const q = new WriteQueue(limits, runner, () => {});
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) {
      const x = unit(i);
      q.add(x.u);
      work.push(x.done);
      work.push(
        q.exclusive(async () => {
          if (running > 0) overlap = true;
          await delay(1);
        }),
      );
    }
    await Promise.all(work);
    expect(overlap).toBe(false);
  });
});
