/**
 * The main thread's budget, per operation, in a process of its own:
 *
 *   node --import tsx bench/reads/micro.ts <folder holding bench.db (10,000 rows)>
 *
 * Two parts:
 * - tinybench micro-benchmarks of single operations, each awaited alone: building and
 *   compiling an insert, the hop of a one-unit batch to a worker thread and back (an echo
 *   worker: the thread crossing without any engine work), a durable insert end to end, and a
 *   point read — the statement alone, on the main thread through `db.kysely`, and on a
 *   reader thread.
 * - The main thread's busy time per operation under 256 concurrent callers
 *   (`eventLoopUtilization`): what each write, main-thread read or reader-thread read costs
 *   the event loop when many run at once, which is what bounds throughput on a busy server.
 *
 * Prints one line: `RESULT_MARKER` + JSON `MicroResult`.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Generated } from 'kysely';
import { Bench } from 'tinybench';
import { connectionSettingsOf } from '../../src/durability/connection-settings.js';
import { openDatabase, readOnReaderThread } from '../../src/index.js';
import { encodeBatch } from '../../src/queue/wire-batch.js';
import { Reader } from '../../src/repo/reader.js';
import { openSqlite } from '../../src/sqlite-types.js';
import { printResult, runAsChild } from '../child.js';
import { CACHE_SIZE_KIB, SELECT_SQL } from '../settings.js';
import { databaseFile, makePayloads } from '../workload.js';

interface BenchDB {
  rows: { id: Generated<number>; payload: string };
}

/** One tinybench task's figures, in µs. */
export interface MicroTask {
  name: string;
  meanUs: number;
  p50Us: number;
  p99Us: number;
  /** Relative margin of error of the mean, in %. */
  rme: number;
  samples: number;
}

/** Main-thread busy time per operation under 256 callers. */
export interface BudgetFigure {
  name: string;
  /** Main-thread busy µs per operation. */
  busyUs: number;
  /** Operations per second over the run. */
  opsPerSec: number;
}

/** What the micro-benchmarks measured. */
export interface MicroResult {
  tasks: MicroTask[];
  budget: BudgetFigure[];
}

const ROWS = 10_000;
const CALLERS = 256;

/** Runs `op` from `CALLERS` concurrent callers, `total` times in all; main-thread busy µs per op. */
async function busyPerOp(
  name: string,
  total: number,
  op: (i: number) => Promise<unknown>,
): Promise<BudgetFigure> {
  let next = 0;
  const caller = async () => {
    for (let i = next++; i < total; i = next++) await op(i);
  };
  const before = performance.eventLoopUtilization();
  const started = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, caller));
  const elapsed = performance.now() - started;
  const used = performance.eventLoopUtilization(before);
  return { name, busyUs: (used.active * 1000) / total, opsPerSec: total / (elapsed / 1000) };
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('Usage: bench/reads/micro.ts <folder with bench.db>');
  const file = databaseFile(dir);
  const db = await openDatabase<BenchDB>({
    path: file,
    logger: false,
    cacheSizeKiB: CACHE_SIZE_KIB,
  });
  const reader = new Reader(await openSqlite(file, {}), connectionSettingsOf(db.options));
  const echo = new Worker(
    "require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m));",
    { eval: true },
  );
  const payloads = makePayloads(200);
  const payload = payloads[0]!;
  const built = db.kysely.insertInto('rows').values({ payload });
  const compiled = built.compile();
  const batch = () =>
    encodeBatch([
      { kind: 'statements', statements: [{ sql: compiled.sql, params: compiled.parameters }] },
    ]);
  const hop = () =>
    new Promise((resolve) => {
      echo.once('message', resolve);
      echo.postMessage(batch());
    });
  let n = 0;
  const id = () => 1 + ((n++ * 2654435761) % ROWS);
  const pointQuery = (i: number) =>
    db.kysely.selectFrom('rows').select(['id', 'payload']).where('id', '=', i);

  const bench = new Bench({ time: 300, warmupTime: 100 });
  bench
    .add('write: build the insert (Kysely builder)', () => {
      db.kysely.insertInto('rows').values({ payload });
    })
    .add('write: compile it', () => {
      built.compile();
    })
    .add('write: hop — a one-unit batch to a worker thread and back (echo, no engine)', hop)
    .add(
      'write: durable insert end to end, awaited (build, compile, queue, COMMIT + fsync, settle)',
      () => db.kysely.insertInto('rows').values({ payload }).execute(),
    )
    .add('point read: build + compile', () => {
      pointQuery(id()).compile();
    })
    .add('point read: the statement alone (Reader.query, main thread)', () => {
      reader.query(SELECT_SQL, [id()]);
    })
    .add('point read: db.kysely, awaited (routed: main thread)', () =>
      pointQuery(id()).executeTakeFirst(),
    )
    .add('point read: db.kysely on a reader thread, awaited (readOnReaderThread)', () =>
      pointQuery(id()).modifyEnd(readOnReaderThread).executeTakeFirst(),
    );
  await bench.run();
  const tasks: MicroTask[] = bench.tasks.map((task) => {
    const r = task.result as {
      latency?: { mean: number; p50: number; p99: number; rme: number; samplesCount: number };
    };
    const l = r.latency;
    if (l === undefined) throw new Error(`tinybench task ${task.name} did not complete`);
    return {
      name: task.name,
      meanUs: l.mean * 1000,
      p50Us: l.p50 * 1000,
      p99Us: l.p99 * 1000,
      rme: l.rme,
      samples: l.samplesCount,
    };
  });

  const budget = [
    await busyPerOp('durable insert', 20_000, (i) =>
      db.kysely
        .insertInto('rows')
        .values({ payload: payloads[i % payloads.length]! })
        .execute(),
    ),
    await busyPerOp('point read, routed (main thread while the turn budget lasts)', 50_000, () =>
      pointQuery(id()).executeTakeFirst(),
    ),
    await busyPerOp('point read on a reader thread (readOnReaderThread)', 50_000, () =>
      pointQuery(id()).modifyEnd(readOnReaderThread).executeTakeFirst(),
    ),
  ];
  await echo.terminate();
  reader.close();
  await db.close();
  printResult({ tasks, budget } satisfies MicroResult);
}

runAsChild(main);
