/**
 * The workload every peer runs: the table, its preloaded rows, the payloads, and N
 * concurrent callers each awaiting one unit before starting the next.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Driver } from './drivers/driver.js';
import { LatencyRecorder, median } from './latency.js';
import { benchPragmas, INSERT_SQL, SCHEMA } from './settings.js';
import type { TrialParams } from './trial-types.js';

/** Distinct payloads cycled through (rows need not be unique; SQLite does not compress). */
const PAYLOAD_POOL = 256;

/** The database file of a trial folder. */
export function databaseFile(dir: string): string {
  return path.join(dir, 'bench.db');
}

/** `count` distinct ASCII payloads of `bytes` bytes each, from a fixed seed. */
export function makePayloads(bytes: number, count = PAYLOAD_POOL): string[] {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let state = 0x2545f491;
  const out: string[] = [];
  for (let n = 0; n < count; n++) {
    let s = '';
    for (let i = 0; i < bytes; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      s += alphabet[(state >>> 16) % alphabet.length];
    }
    out.push(s);
  }
  return out;
}

/**
 * Creates the trial's database: WAL, the `rows` table, and `preloadRows` rows, with a
 * connection of its own that is closed before the driver opens the file.
 */
export async function prepareDatabase(dir: string, params: TrialParams): Promise<string> {
  fs.mkdirSync(dir, { recursive: true });
  const file = databaseFile(dir);
  const { default: Database } = await import('libsql');
  const db = new Database(file);
  try {
    for (const statement of benchPragmas('NORMAL')) db.exec(statement);
    db.exec(SCHEMA);
    if (params.preloadRows > 0) {
      const payloads = makePayloads(params.rowBytes);
      const insert = db.prepare(INSERT_SQL);
      db.exec('BEGIN');
      for (let i = 0; i < params.preloadRows; i++) insert.run(payloads[i % payloads.length]);
      db.exec('COMMIT');
    }
    db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  return file;
}

/**
 * Rows in the table, counted by a fresh connection. (`libsql` is imported here and in
 * `prepareDatabase` only when called, so that trials of other peers do not load it before
 * their peak RSS is taken.)
 */
export async function countRows(file: string): Promise<number> {
  const { default: Database } = await import('libsql');
  const db = new Database(file);
  try {
    return Number((db.prepare('SELECT count(*) FROM rows').raw(true).get() as unknown[])[0]);
  } finally {
    db.close();
  }
}

/** True when operation `i` of a workload with `readRatio` reads is a write (evenly spread). */
export function isWrite(i: number, readRatio: number): boolean {
  if (readRatio <= 0) return true;
  const w = 1 - readRatio;
  return Math.floor((i + 1) * w) > Math.floor(i * w);
}

/** The row operation `i` reads: spread over the preloaded rows. */
export function readId(i: number, preloadRows: number): number {
  return 1 + ((i * 2654435761) % Math.max(1, preloadRows));
}

/** Latencies of a callers workload. */
export interface CallersOutcome {
  writes: LatencyRecorder;
  reads: LatencyRecorder;
  writeCount: number;
}

/**
 * Runs `params.units` operations from `params.callers` concurrent callers. Each caller takes
 * the next operation number, awaits it, records its call-to-resolve latency, and goes on.
 */
export async function runCallers(
  driver: Driver,
  params: TrialParams,
  payloads: readonly string[],
): Promise<CallersOutcome> {
  const { units, readRatio, preloadRows } = params;
  const writes = new LatencyRecorder(units);
  const reads = new LatencyRecorder(readRatio > 0 ? units : 0);
  let next = 0;
  let writeCount = 0;
  const caller = async (): Promise<void> => {
    for (let i = next++; i < units; i = next++) {
      if (isWrite(i, readRatio)) {
        const started = performance.now();
        await driver.insert(payloads[i % payloads.length]!);
        writes.add(performance.now() - started);
        writeCount++;
      } else {
        const started = performance.now();
        await driver.read(readId(i, preloadRows));
        reads.add(performance.now() - started);
      }
    }
  };
  await Promise.all(Array.from({ length: params.callers }, caller));
  return { writes, reads, writeCount };
}

/**
 * What one fsync costs in `dir`: the median of a few 4 KiB overwrite + fsync rounds on a
 * scratch file (through libc, so a slow-disk shim delays it like SQLite's own).
 */
export function measureFsync(dir: string, rounds = 7): number {
  const file = path.join(dir, 'fsync-probe.bin');
  const block = Buffer.alloc(4096, 7);
  const fd = fs.openSync(file, 'w');
  const times: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      fs.writeSync(fd, block, 0, block.length, 0);
      const started = performance.now();
      fs.fsyncSync(fd);
      times.push(performance.now() - started);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  return median(times);
}
