/**
 * The memory trial, in a process of its own (see `bench/memory.ts`):
 *
 *   node --import tsx bench/memory-trial.ts <folder with a prepared database>
 *
 * Opens walguard on the folder's database with its defaults (synchronous=FULL), calls
 * `db.defer()` for each of 1,000,000 units of one 1 KiB row, awaiting each returned promise
 * (it resolves at once unless the queue is full), then `close()`. Prints one result line:
 * `RESULT_MARKER` + JSON `MemoryResult`. The runner counts the rows afterwards.
 */
import { performance } from 'node:perf_hooks';
import type { Generated } from 'kysely';
import { openDatabase } from '../src/index.js';
import { printResult, runAsChild } from './child.js';
import { MEMORY, type MemoryResult } from './memory.js';
import { CACHE_SIZE_KIB } from './settings.js';
import { databaseFile, makePayloads, measureFsync } from './workload.js';

interface BenchDB {
  rows: { id: Generated<number>; payload: string };
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write('Usage: node --import tsx bench/memory-trial.ts <trial folder>\n');
    process.exit(2);
  }
  const fsyncMs = measureFsync(dir);
  const db = await openDatabase<BenchDB>({
    path: databaseFile(dir),
    synchronous: 'FULL',
    cacheSizeKiB: CACHE_SIZE_KIB,
    logger: false,
  });
  const pool = makePayloads(MEMORY.rowBytes);
  let sampledRss = 0;
  let sampledHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    sampledRss = Math.max(sampledRss, m.rss);
    sampledHeap = Math.max(sampledHeap, m.heapUsed);
  };
  const sampler = setInterval(sample, 50);
  let pushedBack = 0;
  const started = performance.now();
  for (let i = 0; i < MEMORY.units; i++) {
    // A distinct 1 KiB payload per unit (a new string, not one of the pool's): 8 chars of the
    // unit's number, then 1016 of a pooled payload.
    const base = pool[i % pool.length]!;
    const payload = `${i.toString(36).padStart(8, '0')}${base.slice(8)}`;
    const queued = db.defer((k) => k.insertInto('rows').values({ payload }));
    let admitted = false;
    void queued.then(() => {
      admitted = true;
    });
    await null;
    if (!admitted) pushedBack++;
    await queued;
  }
  await db.close();
  const elapsedMs = performance.now() - started;
  clearInterval(sampler);
  sample();
  const s = db.stats();
  const result: MemoryResult = {
    units: MEMORY.units,
    rowBytes: MEMORY.rowBytes,
    elapsedMs,
    unitsPerSec: MEMORY.units / (elapsedMs / 1000),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    sampledPeakRssMiB: sampledRss / 1024 ** 2,
    sampledPeakHeapMiB: sampledHeap / 1024 ** 2,
    pushedBack,
    commits: s.commits,
    maxBatchUnits: s.maxBatchUnits,
    deferredErrors: s.deferredErrors,
    fsyncMs,
  };
  printResult(result);
}

runAsChild(main);
