import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkState } from './checker.js';
import { exploreCrashStates, formatFailures } from './explore.js';
import { openLibsql } from './libsql.js';
import { parseMarks } from './marks.js';
import type { Op } from './oplog.js';
import { buildShim, type RecordedRun, runTsUnderShim, type ShimOptions } from './recorder.js';
import { CrashReplayer } from './replay.js';
import { INSERT_PART, INSERT_UNIT, payloadFor, WORKLOAD_SCHEMA } from './workload-schema.js';
import type { WorkloadSummary } from './workloads/raw-libsql.js';

const WORKLOAD = 'test/crash/workloads/raw-libsql.ts';

let root: string;
let runs = 0;

/** Runs the raw-libsql workload under the shim in a new folder. */
function record(
  args: string[],
  shim: Omit<ShimOptions, 'dir'> = {},
): RecordedRun & { dir: string; summary: WorkloadSummary } {
  const dir = join(root, `run${runs}`);
  const log = join(root, `run${runs}.log`);
  runs++;
  const run = runTsUnderShim(WORKLOAD, ['--dir', dir, ...args], { dir, log, ...shim });
  const summary = JSON.parse(run.stdout.trim().split('\n').pop()!) as WorkloadSummary;
  return { ...run, dir, summary };
}

beforeAll(() => {
  buildShim();
  root = mkdtempSync(join(tmpdir(), 'walguard-crash-test-'));
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('crash replay model', () => {
  // A hand-written log: create a file, write it, sync it, then more writes.
  const base = { pid: 1, tid: 1 };
  const data = (n: number, byte: number) => Buffer.alloc(n, byte);
  const ops: Op[] = [
    {
      ...base,
      index: 0,
      kind: 'open',
      path: 'f',
      ino: 7,
      flags: 0,
      created: true,
      truncated: false,
      isDir: false,
    },
    { ...base, index: 1, kind: 'write', path: 'f', ino: 7, offset: 0, data: data(1024, 1) },
    { ...base, index: 2, kind: 'fsync', path: 'f', ino: 7, isDir: false, datasync: false },
    { ...base, index: 3, kind: 'mark', text: 'ack 1' },
    { ...base, index: 4, kind: 'fsync', path: '', ino: 2, isDir: true, datasync: false },
    { ...base, index: 5, kind: 'write', path: 'f', ino: 7, offset: 256, data: data(1024, 2) },
    { ...base, index: 6, kind: 'mark', text: 'ack 2' },
  ];

  it('keeps synced data and drops unsynced writes when nothing pending is kept', () => {
    const r = new CrashReplayer(ops, { model: 'ext4-like' });
    const s = r.state({ point: 7, subset: { kind: 'none' } });
    expect(s.files.get('f')).toEqual(data(1024, 1));
    expect(s.pendingCount).toBe(1);
    expect(parseMarks(s.marks).acked).toEqual([1, 2]);
  });

  it('makes a new name durable only by a directory fsync in strict mode, by any fsync in ext4-like mode', () => {
    const strict = new CrashReplayer(ops, { model: 'strict' });
    expect(strict.state({ point: 3, subset: { kind: 'none' } }).files.has('f')).toBe(false);
    expect(strict.state({ point: 5, subset: { kind: 'none' } }).files.get('f')).toEqual(
      data(1024, 1),
    );
    const ext4 = new CrashReplayer(ops, { model: 'ext4-like' });
    expect(ext4.state({ point: 3, subset: { kind: 'none' } }).files.get('f')).toEqual(
      data(1024, 1),
    );
  });

  it('applies all pending writes for `all` and a sector subset of a torn write', () => {
    const r = new CrashReplayer(ops, { model: 'strict' });
    const all = r.state({ point: 7, subset: { kind: 'all' } }).files.get('f')!;
    expect(all.length).toBe(1280);
    expect(all.subarray(256)).toEqual(data(1024, 2));
    // The pending write covers bytes 256..1279: sectors [256,512), [512,1024), [1024,1280).
    const seen = new Set<string>();
    for (let seed = 0; seed < 40; seed++) {
      const f = r.state({ point: 7, subset: { kind: 'torn', seed } }).files.get('f')!;
      const sectors = [f[256], f[600], f.length > 1024 ? f[1100] : 0];
      for (const b of sectors) expect([0, 1, 2]).toContain(b);
      seen.add(sectors.join(''));
    }
    expect(seen.size).toBeGreaterThan(2);
  });

  it('gives equal keys to equal states and plans states in crash-point order', () => {
    const r = new CrashReplayer(ops);
    const a = r.state({ point: 6, subset: { kind: 'none' } });
    const b = r.state({ point: 6, subset: { kind: 'prefix', count: 0 } });
    expect(a.key).toBe(b.key);
    const plan = r.plan();
    expect(plan.map((s) => s.point)).toEqual([...plan.map((s) => s.point)].sort((x, y) => x - y));
  });
});

describe('crash state checker', () => {
  it('reports lost, partial, damaged, out-of-order and failed-but-present units', () => {
    const dir = join(root, 'checker');
    mkdirSync(dir, { recursive: true });
    const db = openLibsql(join(dir, 'db.sqlite'));
    db.exec(WORKLOAD_SCHEMA);
    const unit = db.prepare(INSERT_UNIT);
    const part = db.prepare(INSERT_PART);
    const write = (id: number, parts: number, written = parts) => {
      unit.run(id, 'odd', parts, payloadFor(id, -1, 40));
      for (let p = 0; p < written; p++) part.run(id, p, payloadFor(id, p, 100));
    };
    write(1, 2);
    write(2, 2, 1); // a part missing
    write(3, 2);
    db.prepare('UPDATE unit_parts SET payload = ? WHERE unit_id = 3 AND part = 1').run(
      `${payloadFor(3, 1, 100).slice(0, 99)}X`,
    ); // a damaged payload
    part.run(9, 0, payloadFor(9, 0, 100)); // parts without their unit
    write(7, 2); // units 4-6 missing before it
    db.close();

    const result = checkState(dir, { acked: [1, 2, 4], deferred: [5], rejected: [7] });
    expect(result.ok).toBe(false);
    expect(result.integrity).toEqual(['ok']);
    expect(result.partial).toEqual([2, 3, 9]);
    expect(result.corrupt).toBe(true);
    expect(result.lostAcked).toEqual([4]);
    expect(result.rejectedPresent).toEqual([7]);
    expect(result.outOfOrder).toEqual([5]);

    const fine = checkState(dir, { acked: [1], checkOrder: false, rejected: [8] });
    expect(fine.lostAcked).toEqual([]);
    expect(fine.partial).toEqual([2, 3, 9]);
  });

  it('reads a missing database file as an empty one', () => {
    const result = checkState(join(root, 'nothing-here'), { acked: [] });
    expect(result).toMatchObject({ ok: true, dbExists: false, present: 0 });
    expect(checkState(join(root, 'nothing-here'), { acked: [1] }).lostAcked).toEqual([1]);
  });
});

describe('power loss under raw libsql', () => {
  it('synchronous=FULL: none of 1,000+ crash states loses an acknowledged unit or is damaged', () => {
    const run = record([
      '--sync',
      'FULL',
      '--units',
      '200',
      '--autocheckpoint',
      '64',
      '--checkpoint-every',
      '80',
    ]);
    expect(run.summary.acked).toBe(200);
    expect(run.summary.synchronous).toBe(2);
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    const report = exploreCrashStates({ replayer, plan: { maxStates: 1600 } });
    console.info(
      `FULL: ${report.states} states (${report.duplicates} duplicates skipped) in ` +
        `${Math.round(report.elapsedMs)} ms, ${Math.round(report.statesPerSecond)} states/s`,
    );
    expect(report.states).toBeGreaterThanOrEqual(1000);
    expect(report.ok, formatFailures(report)).toBe(report.states);
    // Every kind of subset was exercised, torn writes included.
    for (const n of Object.values(report.bySubset)) expect(n).toBeGreaterThan(100);

    // The same log under the ext4 model (names durable in order with any fsync).
    const ext4 = exploreCrashStates({
      replayer: new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'ext4-like' }),
      plan: { maxStates: 300, seed: 2 },
    });
    expect(ext4.ok, formatFailures(ext4)).toBe(ext4.states);
  });

  it('records a writer in a worker thread with marks from the main thread, and FULL holds', () => {
    const run = record(['--sync', 'FULL', '--units', '60', '--worker']);
    expect(run.summary.acked).toBe(60);
    const writers = new Set(run.ops.filter((op) => op.kind === 'write').map((op) => op.tid));
    const markers = new Set(run.ops.filter((op) => op.kind === 'mark').map((op) => op.tid));
    expect([...writers].some((tid) => !markers.has(tid))).toBe(true);
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot });
    const report = exploreCrashStates({ replayer, plan: { maxStates: 300 } });
    expect(report.states).toBeGreaterThan(100);
    expect(report.ok, formatFailures(report)).toBe(report.states);
  });

  it('synchronous=NORMAL: states stay consistent but some lose acknowledged units', () => {
    const run = record(['--sync', 'NORMAL', '--units', '120', '--autocheckpoint', '64']);
    expect(run.summary.synchronous).toBe(1);
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    const report = exploreCrashStates({ replayer, plan: { maxStates: 400 } });
    expect(report.lostAcked).toBeGreaterThan(0);
    expect(report.maxLostAcked).toBeGreaterThan(1);
    expect(report.corrupt, formatFailures(report)).toBe(0);
  });

  it('synchronous=OFF: some crash states are damaged and some lose acknowledged units', () => {
    const run = record(['--sync', 'OFF', '--units', '120', '--autocheckpoint', '64']);
    expect(run.summary.synchronous).toBe(0);
    expect(run.ops.some((op) => op.kind === 'fsync')).toBe(false);
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'ext4-like' });
    const report = exploreCrashStates({ replayer, plan: { maxStates: 500, randomPerPoint: 2 } });
    expect(report.corrupt).toBeGreaterThan(0);
    expect(report.lostAcked).toBeGreaterThan(0);
  });

  it('checks an encrypted database with its key, and cannot read it without', () => {
    const key = 'crash-harness-key';
    const run = record(['--sync', 'FULL', '--units', '30', '--key', key]);
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot });
    const withKey = exploreCrashStates({ replayer, encryptionKey: key, plan: { maxStates: 120 } });
    expect(withKey.ok, formatFailures(withKey)).toBe(withKey.states);
    const last = exploreCrashStates({
      replayer,
      specs: [{ point: replayer.lastPoint, subset: { kind: 'none' } }],
    });
    expect(last.corrupt).toBe(1);
    expect(last.failures[0]?.result.error).toMatch(/SQLITE_NOTADB/);
  });
});

describe('fault injection through the shim', () => {
  it('a write past the space limit makes COMMIT fail with SQLITE_FULL; freeing space lets later commits succeed', () => {
    const run = record(['--units', '20', '--continue-on-error', '--free-space-on-full'], {
      enospcAfterBytes: 100_000,
    });
    expect(run.summary.failed.map((f) => f.code)).toEqual(['SQLITE_FULL']);
    expect(run.summary.acked).toBe(19);
    expect(run.ops.some((op) => op.kind === 'fault' && op.errno === 28)).toBe(true);
    const units = parseMarks(run.ops.flatMap((op) => (op.kind === 'mark' ? [op.text] : [])));
    const result = checkState(run.dir, units);
    expect(result.ok, result.problems.join('\n')).toBe(true);
  });

  it('an EIO from fsync makes COMMIT fail with SQLITE_IOERR_FSYNC', () => {
    const run = record(['--units', '8', '--continue-on-error'], { eioFsyncN: 12 });
    expect(run.summary.failed).toHaveLength(1);
    expect(run.summary.failed[0]?.code).toMatch(/^SQLITE_IOERR/);
    expect(run.summary.acked).toBe(7);
  });

  it('a COMMIT that failed on fsync can reappear after a crash (its WAL frames stay until overwritten)', () => {
    // Surprising but true of SQLite: the failed commit's frames are complete in the
    // WAL; recovery before the next commit overwrites them replays them.
    const run = record(['--units', '8', '--continue-on-error'], { eioFsyncN: 12 });
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot });
    const report = exploreCrashStates({ replayer, plan: { points: 'every' } });
    expect(report.rejectedPresent).toBeGreaterThan(0);
    expect(report.lostAcked).toBe(0);
    expect(report.corrupt).toBe(0);
  });

  it('an EIO from a write makes COMMIT fail with SQLITE_IOERR_WRITE', () => {
    const run = record(['--units', '8', '--continue-on-error'], { eioWriteN: 30 });
    expect(run.summary.failed.map((f) => f.code)).toEqual(['SQLITE_IOERR_WRITE']);
    expect(run.summary.acked).toBe(7);
  });

  it('an fsync delay slows every FULL commit by at least the delay', () => {
    const fast = record(['--units', '15', '--big-every', '0']);
    const slow = record(['--units', '15', '--big-every', '0'], { fsyncDelayUs: 20_000 });
    expect(slow.ops.filter((op) => op.kind === 'fsync').length).toBeGreaterThanOrEqual(15);
    expect(slow.summary.commitMeanMs).toBeGreaterThanOrEqual(19);
    expect(slow.summary.commitMeanMs - fast.summary.commitMeanMs).toBeGreaterThan(15);
  });

  it('delays fsync without recording when no log is set', () => {
    const dir = join(root, `nolog${runs++}`);
    const run = runTsUnderShim(WORKLOAD, ['--dir', dir, '--units', '5', '--big-every', '0'], {
      dir,
      fsyncDelayUs: 20_000,
    });
    const summary = JSON.parse(run.stdout.trim()) as WorkloadSummary;
    expect(run.ops).toEqual([]);
    expect(summary.commitMeanMs).toBeGreaterThanOrEqual(19);
  });
});
