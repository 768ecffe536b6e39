/**
 * A crash workload on raw libsql (no walguard): WAL mode, a given
 * `synchronous`, one transaction per unit with several parts, and an
 * `ack <id>` mark after each COMMIT returns (`reject <id>` after a failure).
 * It proves the harness before walguard exists.
 *
 * Run: node --import tsx test/crash/workloads/raw-libsql.ts --dir DIR [options]
 * Prints one JSON line ({@link WorkloadSummary}) on stdout.
 *
 * Options (defaults in brackets):
 *   --dir DIR               folder of the database (created) [required]
 *   --db NAME               database file name [db.sqlite]
 *   --units N               units to write [200]
 *   --start ID              first unit id [1]
 *   --parts N               parts per unit [4]
 *   --part-bytes N          bytes per part [120]
 *   --big-every N           every Nth unit has 1,500-byte parts (overflow pages); 0: never [7]
 *   --sync MODE             synchronous: FULL, NORMAL or OFF [FULL]
 *   --autocheckpoint N      wal_autocheckpoint in pages [1000]
 *   --checkpoint-every N    PRAGMA wal_checkpoint(TRUNCATE) every N units; 0: never [0]
 *   --key KEY               encryption key
 *   --continue-on-error     keep writing after a failed unit (default: stop)
 *   --free-space-on-full    after SQLITE_FULL, create <dir>/.walrec-space-ok
 *   --no-close              do not call close() (libsql still closes the connection when
 *                           the process exits: the WAL is checkpointed and removed)
 *   --kill                  end with SIGKILL to itself after printing the summary, leaving
 *                           the WAL as a crash does (the exit status is then a signal)
 *   --worker                run the database in a worker thread and write the marks
 *                           from the main thread, as walguard does
 */
import { writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type LibsqlError, openLibsql } from '../libsql.js';
import { MarkWriter } from '../marks.js';
import { INSERT_PART, INSERT_UNIT, payloadFor, WORKLOAD_SCHEMA } from '../workload-schema.js';
import { intOption } from './options.js';

/** What the workload prints when it is done. */
export interface WorkloadSummary {
  /** Units whose COMMIT returned. */
  acked: number;
  /** Units that failed, with SQLite's code. */
  failed: { unit: number; code: string; message: string }[];
  /** `PRAGMA synchronous` read back (0 OFF, 1 NORMAL, 2 FULL). */
  synchronous: number;
  /** Wall time of the unit loop in milliseconds. */
  totalMs: number;
  /** Mean and max time of a successful COMMIT statement, in milliseconds. */
  commitMeanMs: number;
  commitMaxMs: number;
}

/** A unit's outcome, reported to whoever writes the marks. */
type UnitEvent = { ack: number } | { reject: number };

const { values } = parseArgs({
  args: isMainThread ? process.argv.slice(2) : (workerData as string[]),
  options: {
    dir: { type: 'string' },
    db: { type: 'string', default: 'db.sqlite' },
    units: { type: 'string', default: '200' },
    start: { type: 'string', default: '1' },
    parts: { type: 'string', default: '4' },
    'part-bytes': { type: 'string', default: '120' },
    'big-every': { type: 'string', default: '7' },
    sync: { type: 'string', default: 'FULL' },
    autocheckpoint: { type: 'string', default: '1000' },
    'checkpoint-every': { type: 'string', default: '0' },
    key: { type: 'string' },
    'continue-on-error': { type: 'boolean', default: false },
    'free-space-on-full': { type: 'boolean', default: false },
    'no-close': { type: 'boolean', default: false },
    kill: { type: 'boolean', default: false },
    worker: { type: 'boolean', default: false },
  },
});

const int = (name: keyof typeof values, min: number): number => intOption(values, name, min);

if (values.dir === undefined) throw new Error('Expected `--dir` (the database folder)');
const sync = String(values.sync).toUpperCase();
if (!['FULL', 'NORMAL', 'OFF'].includes(sync)) {
  throw new Error(`Expected \`--sync\` to be FULL, NORMAL or OFF, got \`${values.sync}\``);
}
const dir = values.dir;

/** Opens the database, writes the units, reports each outcome; returns the summary. */
function runUnits(report: (event: UnitEvent) => void): WorkloadSummary {
  const units = int('units', 0);
  const start = int('start', 1);
  const parts = int('parts', 1);
  const partBytes = int('part-bytes', 1);
  const bigEvery = int('big-every', 0);
  const checkpointEvery = int('checkpoint-every', 0);
  const db = openLibsql(
    join(dir, String(values.db)),
    values.key !== undefined ? { encryptionKey: values.key } : {},
  );
  // synchronous first, so that even the switch to WAL runs at the chosen level.
  db.pragma(`synchronous = ${sync}`);
  db.pragma('journal_mode = WAL');
  db.pragma(`wal_autocheckpoint = ${int('autocheckpoint', 0)}`);
  db.exec('BEGIN IMMEDIATE');
  db.exec(WORKLOAD_SCHEMA);
  db.exec('COMMIT');
  const synchronous = Number((db.prepare('PRAGMA synchronous').raw().get() as [number])[0]);

  const insertUnit = db.prepare(INSERT_UNIT);
  const insertPart = db.prepare(INSERT_PART);
  const failed: WorkloadSummary['failed'] = [];
  let acked = 0;
  let commitTotal = 0;
  let commitMax = 0;
  const t0 = performance.now();
  for (let id = start; id < start + units; id++) {
    const size = bigEvery > 0 && id % bigEvery === 0 ? 1500 : partBytes;
    try {
      db.exec('BEGIN IMMEDIATE');
      insertUnit.run(id, id % 2 === 0 ? 'even' : 'odd', parts, payloadFor(id, -1, 40));
      for (let p = 0; p < parts; p++) insertPart.run(id, p, payloadFor(id, p, size));
      const c0 = performance.now();
      db.exec('COMMIT');
      const dt = performance.now() - c0;
      commitTotal += dt;
      commitMax = Math.max(commitMax, dt);
      acked++;
      report({ ack: id });
    } catch (err) {
      const e = err as LibsqlError;
      if (db.inTransaction) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // SQLite may already have rolled back; the unit is reported failed either way.
        }
      }
      failed.push({ unit: id, code: e.code ?? 'UNKNOWN', message: e.message });
      report({ reject: id });
      if (e.code === 'SQLITE_FULL' && values['free-space-on-full']) {
        writeFileSync(join(dir, '.walrec-space-ok'), '');
      }
      if (!values['continue-on-error']) break;
    }
    if (checkpointEvery > 0 && (id - start + 1) % checkpointEvery === 0) {
      db.pragma('wal_checkpoint(TRUNCATE)');
    }
  }
  const totalMs = performance.now() - t0;
  if (!values['no-close'] && !values.kill) db.close();
  return {
    acked,
    failed,
    synchronous,
    totalMs,
    commitMeanMs: acked > 0 ? commitTotal / acked : 0,
    commitMaxMs: commitMax,
  };
}

const markOf = (event: UnitEvent): string =>
  'ack' in event ? `ack ${event.ack}` : `reject ${event.reject}`;

if (!isMainThread) {
  const port = parentPort!;
  const summary = runUnits((event) => port.postMessage(event));
  port.postMessage({ summary });
} else {
  const marks = new MarkWriter(dir);
  marks.mark('mark setup');
  const finish = (summary: WorkloadSummary) => {
    marks.mark('mark workload done');
    marks.close();
    writeSync(1, `${JSON.stringify(summary)}\n`);
    if (values.kill) process.kill(process.pid, 'SIGKILL');
  };
  if (values.worker) {
    // The writer in a worker thread, the marks from this one: the shim must order both.
    // Node 20 does not pass --import hooks to workers: register tsx in the worker first.
    const bootstrap =
      "import('tsx/esm/api').then((tsx) => { tsx.register(); return import(" +
      `${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(bootstrap, { eval: true, workerData: process.argv.slice(2) });
    worker.on('message', (msg: UnitEvent | { summary: WorkloadSummary }) => {
      if ('summary' in msg) finish(msg.summary);
      else marks.mark(markOf(msg));
    });
    worker.on('error', (err) => {
      throw err;
    });
  } else {
    finish(runUnits((event) => marks.mark(markOf(event))));
  }
}
