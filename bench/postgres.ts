/**
 * walguard on PostgreSQL against the naive way: N concurrent callers, each awaiting one
 * 200-byte insert after the other, on a throwaway local cluster (fsync on, default
 * settings), every trial in a fresh process, the table emptied between trials.
 *
 * Drivers:
 * - `walguard`: `db.kysely.insertInto('rows').values({ payload }).execute()` on
 *   `openDatabase({ url })` (acknowledged after its batch's COMMIT, synchronous_commit=on);
 * - `naive-pool`: a `pg` Pool of 20, one autocommit INSERT per call (synchronous_commit=on);
 * - `naive-async`: the same pool with `synchronous_commit=off` (acknowledged before the WAL
 *   is flushed: a server crash loses the last ones).
 *
 * Reports rows/s, acknowledgement latency p50/p99, and the server's commits per 1,000 rows
 * (`pg_stat_database.xact_commit` before and after the trial process; connection setup
 * included). Each cell runs `--reps` times (default 3), the drivers interleaved and their
 * order rotated per repetition, so that a noisy machine hits each driver alike; the table
 * shows the median repetition by rows/s and the spread (min–max rows/s). Prints a markdown
 * table; `--save` writes it to bench/results/<date>-postgres.md.
 *
 *   node --import tsx bench/postgres.ts [--seconds 3] [--reps 3] [--callers 1,16,256] [--save]
 *   node --import tsx bench/postgres.ts --trial walguard 256 3 <url>      (one trial, JSON)
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { Generated } from 'kysely';
import pg from 'pg';
import type * as Walguard from '../src/index.js';
import { pgTypes } from '../src/pg/pg-types.js';
import { builtTwin } from '../src/spawn-worker.js';
import { createDatabase, startCluster } from '../test/pg/cluster.js';

const DRIVERS = ['walguard', 'naive-pool', 'naive-async'] as const;
type DriverName = (typeof DRIVERS)[number];

/** What one trial measured. */
interface TrialResult {
  driver: DriverName;
  callers: number;
  rows: number;
  seconds: number;
  p50: number;
  p99: number;
  /** Rows written in the whole process (warm-up included), for commits per row. */
  totalRows: number;
}

const PAYLOAD = 'x'.repeat(200);

/** Runs `callers` closed-loop callers for `seconds` (after a warm-up) and measures. */
async function trial(driver: DriverName, callers: number, seconds: number, url: string) {
  let insert: () => Promise<unknown>;
  let close: () => Promise<void>;
  if (driver === 'walguard') {
    // The build, as an app runs it (`npm run bench:postgres` builds first), when current.
    const entry = builtTwin('index', new URL('../src/index.ts', import.meta.url).href);
    if (entry === undefined) console.error('dist/ is missing or stale: measuring src/ through tsx');
    const { openDatabase } = (await import(entry?.href ?? '../src/index.js')) as typeof Walguard;
    const db = await openDatabase<{ rows: { id: Generated<number>; payload: string } }>({
      url,
      logger: false,
    });
    insert = () => db.kysely.insertInto('rows').values({ payload: PAYLOAD }).execute();
    close = () => db.close();
  } else {
    const pool = new pg.Pool({
      connectionString: url,
      max: 20,
      types: pgTypes,
      ...(driver === 'naive-async' ? { options: '-c synchronous_commit=off' } : {}),
    });
    insert = () => pool.query('INSERT INTO rows (payload) VALUES ($1)', [PAYLOAD]);
    close = () => pool.end();
  }
  let totalRows = 0;
  const latencies: number[] = [];
  let measuring = false;
  let stopAt = Number.POSITIVE_INFINITY;
  const caller = async () => {
    while (performance.now() < stopAt) {
      const t = performance.now();
      await insert();
      totalRows++;
      if (measuring) latencies.push(performance.now() - t);
    }
  };
  // Warm-up: a tenth of the trial, then the timed section.
  stopAt = performance.now() + Math.min(1000, seconds * 100);
  await Promise.all(Array.from({ length: callers }, caller));
  measuring = true;
  const started = performance.now();
  stopAt = started + seconds * 1000;
  await Promise.all(Array.from({ length: callers }, caller));
  const elapsed = (performance.now() - started) / 1000;
  await close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  const result: TrialResult = {
    driver,
    callers,
    rows: latencies.length,
    seconds: elapsed,
    p50: at(0.5),
    p99: at(0.99),
    totalRows,
  };
  return result;
}

async function xactCommits(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, types: pgTypes });
  await client.connect();
  try {
    // The server flushes a backend's statistics when it exits; give it a moment.
    await new Promise((r) => setTimeout(r, 300));
    const { rows } = await client.query(
      'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()',
    );
    return Number(rows[0].n);
  } finally {
    await client.end();
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      trial: { type: 'boolean', default: false },
      seconds: { type: 'string', default: '3' },
      reps: { type: 'string', default: '3' },
      callers: { type: 'string', default: '1,16,256' },
      save: { type: 'boolean', default: false },
    },
  });
  if (values.trial) {
    const [driver, callers, seconds, url] = positionals;
    const result = await trial(driver as DriverName, Number(callers), Number(seconds), url!);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const seconds = Number(values.seconds);
  const callerCounts = values.callers.split(',').map(Number);
  const cluster = await startCluster();
  const reps = Number(values.reps);
  type Row = TrialResult & { commitsPer1k: number; min: number; max: number };
  const results: Row[] = [];
  let serverVersion = '?';
  try {
    const url = await createDatabase(cluster.url);
    const admin = new pg.Client(url);
    await admin.connect();
    serverVersion = (await admin.query('SHOW server_version')).rows[0].server_version;
    await admin.query('CREATE TABLE rows (id bigserial PRIMARY KEY, payload text NOT NULL)');
    for (const callers of callerCounts) {
      const trials = new Map<DriverName, Row[]>(DRIVERS.map((d) => [d, []]));
      for (let r = 0; r < reps; r++) {
        for (const driver of [...DRIVERS.slice(r % 3), ...DRIVERS.slice(0, r % 3)]) {
          await admin.query('TRUNCATE rows');
          await admin.query('CHECKPOINT');
          const before = await xactCommits(url);
          const child = spawnSync(
            process.execPath,
            [
              '--import',
              'tsx',
              new URL(import.meta.url).pathname,
              '--trial',
              driver,
              String(callers),
              String(seconds),
              url,
            ],
            { encoding: 'utf8', timeout: 300_000 },
          );
          if (child.status !== 0) throw new Error(`${driver} trial failed: ${child.stderr}`);
          const result = JSON.parse(child.stdout.trim()) as TrialResult;
          const commits = (await xactCommits(url)) - before - 1;
          const row = {
            ...result,
            commitsPer1k: (commits / result.totalRows) * 1000,
            min: 0,
            max: 0,
          };
          trials.get(driver)!.push(row);
          console.error(
            `${driver} ${callers}: ${Math.round(row.rows / row.seconds)} rows/s, p50 ${row.p50.toFixed(2)} ms, p99 ${row.p99.toFixed(2)} ms, ${row.commitsPer1k.toFixed(0)} commits/1k rows`,
          );
        }
      }
      for (const driver of DRIVERS) {
        const runs = trials.get(driver)!.sort((a, b) => a.rows / a.seconds - b.rows / b.seconds);
        const median = runs[runs.length >> 1]!;
        const rates = runs.map((x) => x.rows / x.seconds);
        results.push({ ...median, min: rates[0]!, max: rates[rates.length - 1]! });
      }
    }
    await admin.end();
  } finally {
    cluster.stop();
  }
  const rate = (r: TrialResult) => r.rows / r.seconds;
  const lines = [
    `PostgreSQL ${serverVersion} (local, throwaway cluster, fsync on), Node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model.trim()}), ${new Date().toISOString().slice(0, 10)}; ${seconds} s per trial after a warm-up, median of ${reps}; \`node --import tsx bench/postgres.ts\``,
    '',
    '| callers | driver | rows/s | spread (rows/s) | × naive pool | ack p50 ms | ack p99 ms | server commits / 1k rows |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of results) {
    const naive = results.find((x) => x.callers === r.callers && x.driver === 'naive-pool')!;
    lines.push(
      `| ${r.callers} | ${r.driver} | ${Math.round(rate(r)).toLocaleString('en')} | ${Math.round(r.min)}–${Math.round(r.max)} | ${(rate(r) / rate(naive)).toFixed(2)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${Math.round(r.commitsPer1k)} |`,
    );
  }
  const table = lines.join('\n');
  console.log(table);
  if (values.save) {
    const file = new URL(
      `./results/${new Date().toISOString().slice(0, 10)}-postgres.md`,
      import.meta.url,
    );
    writeFileSync(file, `${table}\n`);
  }
}

await main();
