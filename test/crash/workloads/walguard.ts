/**
 * A crash workload through walguard's public API: concurrent callers submit units (critical
 * `write()`s, `defer()`s and interactive `transaction()`s), each unit one `units` row plus
 * `--parts` rows of `unit_parts` (workload-schema.ts), and mark what the app was told:
 * `ack <id>` after a unit's promise resolved, `defer <id>` when a deferred unit was
 * submitted, `reject <id>` after a unit's promise rejected.
 *
 * Submission order. Unit ids are given in submission order, so that the checker's order check
 * means "applied in the order submitted" (contract line 3). `write()` and `defer()` take
 * their place in the queue synchronously; a transaction takes it a few microtasks later
 * (Kysely's hops), so no other unit is submitted until one `setImmediate` after a
 * transaction was called (the submission gate).
 *
 * Ending. `--end kill`: SIGKILL to itself after the last mark, leaving the WAL as a crash
 * does. `--end close`: `close()` (drain, TRUNCATE checkpoint), then `ack <id>` for every
 * deferred unit, since contract line 4 says `close()` flushes them all, then exit.
 *
 * Run: node --import tsx test/crash/workloads/walguard.ts --dir DIR [options]
 * Prints one JSON line ({@link WalguardWorkloadSummary}) on stdout.
 *
 * Options (defaults in brackets):
 *   --dir DIR               folder of the database (created) [required]
 *   --db NAME               database file name [db.sqlite]
 *   --sync MODE             walguard's synchronous: FULL, NORMAL or EXTRA [FULL]
 *   --units N               units to submit [300]
 *   --start ID              first unit id [1]
 *   --callers N             concurrent callers [8]
 *   --mix C:D:T             weights of critical writes, deferred writes, transactions [1:0:0]
 *   --parts N               parts per unit [4]
 *   --part-bytes N          bytes per part [120]
 *   --big-every N           every Nth unit has 1,500-byte parts (overflow pages); 0: never [7]
 *   --fail-every N          every Nth unit fails on purpose (a duplicate part, or a throw in
 *                           the transaction) and must be rolled back alone; 0: never [0]
 *   --checkpoint-every N    a caller runs db.checkpoint('TRUNCATE') after a unit (not a
 *                           deferred one) whose id is divisible by N; 0: never [0]
 *   --wal-limit BYTES       checkpoint.walSizeLimitBytes (>= 65536) [walguard's default]
 *   --autocheckpoint PAGES  walAutocheckpointPages [1000]
 *   --idle-ms MS            checkpoint.idleMs; 0: no idle checkpoints [0]
 *   --flush-ms MS           deferredFlushMs [5]
 *   --backup-every N        a caller runs db.backup() after a unit (not a deferred one)
 *                           whose id is divisible by N; 0: never [0]
 *   --backup-dir DIR        backup folder (keep it outside --dir: see docs) [required with
 *                           --backup-every]
 *   --passphrase P          encrypt with a passphrase (key file beside the database)
 *   --end kill|close        how the run ends (see above) [kill]
 *   --free-space-on-full    after the first DISK_FULL, create <dir>/.walrec-space-ok (the
 *                           shim's "space is back")
 */
import { writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import type { SettingsReadBack } from '../../../src/durability/connection-settings.js';
import { type CommitEvent, openDatabase, type SynchronousLevel } from '../../../src/index.js';
import { MarkWriter } from '../marks.js';
import { payloadFor, WORKLOAD_SCHEMA } from '../workload-schema.js';
import { intOption } from './options.js';

/** The tables of workload-schema.ts, for Kysely. */
interface WorkloadDB {
  units: { id: number; kind: string; parts: number; payload: string };
  unit_parts: { unit_id: number; part: number; payload: string };
}

/** A backup taken during the run. */
export interface BackupRecord {
  /** The backup file. */
  path: string;
  /** Units acknowledged before `backup()` was called: the backup must hold each of them. */
  ackedBefore: number[];
  /** Deferred units submitted before `backup()` was called. */
  deferredBefore: number[];
}

/** What the workload prints when it is done. */
export interface WalguardWorkloadSummary {
  /** Units acknowledged (critical writes and transactions whose promise resolved). */
  acked: number;
  /** Deferred units submitted. */
  deferred: number;
  /** Units whose promise rejected, with the error code, in rejection order. */
  rejected: { id: number; kind: UnitKind; code: string; planned: boolean }[];
  /** Batches reported by the `commit` event that failed as a whole: units and code. */
  failedBatches: { units: number; critical: number; code: string }[];
  /** Batches committed (from the `commit` event). */
  commits: number;
  /** Largest batch seen, in units. */
  maxBatchUnits: number;
  /** Checkpoints run on request. */
  checkpoints: number;
  /** Backups taken. */
  backups: BackupRecord[];
  /** `PRAGMA synchronous` of the writer connection as walguard read it back. */
  synchronous: number;
  /** How the run ended. */
  end: 'kill' | 'close';
  /** Wall time of the unit loop, in ms. */
  totalMs: number;
}

/** The kinds of unit. */
export type UnitKind = 'write' | 'defer' | 'tx';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    db: { type: 'string', default: 'db.sqlite' },
    sync: { type: 'string', default: 'FULL' },
    units: { type: 'string', default: '300' },
    start: { type: 'string', default: '1' },
    callers: { type: 'string', default: '8' },
    mix: { type: 'string', default: '1:0:0' },
    parts: { type: 'string', default: '4' },
    'part-bytes': { type: 'string', default: '120' },
    'big-every': { type: 'string', default: '7' },
    'fail-every': { type: 'string', default: '0' },
    'checkpoint-every': { type: 'string', default: '0' },
    'wal-limit': { type: 'string' },
    autocheckpoint: { type: 'string', default: '1000' },
    'idle-ms': { type: 'string', default: '0' },
    'flush-ms': { type: 'string', default: '5' },
    'backup-every': { type: 'string', default: '0' },
    'backup-dir': { type: 'string' },
    passphrase: { type: 'string' },
    end: { type: 'string', default: 'kill' },
    'free-space-on-full': { type: 'boolean', default: false },
  },
});

const int = (name: keyof typeof values, min: number): number => intOption(values, name, min);

if (values.dir === undefined) throw new Error('Expected `--dir` (the database folder)');
const dir = values.dir;
const end = values.end;
if (end !== 'kill' && end !== 'close') {
  throw new Error(`Expected \`--end\` to be kill or close, got \`${end}\``);
}
const mix = String(values.mix).split(':').map(Number);
if (
  mix.length !== 3 ||
  mix.some((w) => !Number.isInteger(w) || w < 0) ||
  mix[0]! + mix[1]! + mix[2]! === 0
) {
  throw new Error(`Expected \`--mix\` to be three integer weights C:D:T, got \`${values.mix}\``);
}
const backupEvery = int('backup-every', 0);
if (backupEvery > 0 && values['backup-dir'] === undefined) {
  throw new Error('Expected `--backup-dir` with `--backup-every`');
}

const units = int('units', 0);
const start = int('start', 1);
const parts = int('parts', 1);
const partBytes = int('part-bytes', 1);
const bigEvery = int('big-every', 0);
const failEvery = int('fail-every', 0);
const checkpointEvery = int('checkpoint-every', 0);

const marks = new MarkWriter(dir);
marks.mark('mark setup');

const db = await openDatabase<WorkloadDB>({
  path: join(dir, String(values.db)),
  synchronous: String(values.sync).toUpperCase() as SynchronousLevel,
  logger: false,
  handleSignals: false,
  deferredFlushMs: int('flush-ms', 0),
  walAutocheckpointPages: int('autocheckpoint', 0),
  checkpoint: {
    idleMs: int('idle-ms', 0),
    ...(values['wal-limit'] !== undefined ? { walSizeLimitBytes: int('wal-limit', 65536) } : {}),
  },
  ...(values['backup-dir'] !== undefined
    ? { backup: { dir: values['backup-dir'], keepLast: 1000 } }
    : {}),
  ...(values.passphrase !== undefined ? { encryption: { passphrase: values.passphrase } } : {}),
});

const summary: WalguardWorkloadSummary = {
  acked: 0,
  deferred: 0,
  rejected: [],
  failedBatches: [],
  commits: 0,
  maxBatchUnits: 0,
  checkpoints: 0,
  backups: [],
  synchronous: Number((db.stats().settings.writer as SettingsReadBack).synchronous),
  end,
  totalMs: 0,
};
/** Deferred ids in submission order, and how many of them a batch has settled so far. */
const deferredIds: number[] = [];
let deferredSettled = 0;
db.on('commit', (event: CommitEvent) => {
  // Deferred units are applied in submission order (contract line 3), so the deferred units
  // of this batch are the next ones not yet settled. A failed batch rejects them with it:
  // their failure reaches no caller, so say it here.
  const deferredInBatch = deferredIds.slice(
    deferredSettled,
    deferredSettled + event.units - event.critical,
  );
  deferredSettled += deferredInBatch.length;
  if (event.error !== undefined) {
    const code = (event.error as { code?: string }).code ?? 'UNKNOWN';
    summary.failedBatches.push({ units: event.units, critical: event.critical, code });
    for (const id of deferredInBatch) {
      marks.mark(`reject ${id}`);
      summary.rejected.push({ id, kind: 'defer', code, planned: false });
    }
  } else {
    summary.commits++;
  }
  summary.maxBatchUnits = Math.max(summary.maxBatchUnits, event.units);
});
// Failed deferred units and failed batches are reported here too; the commit listener above
// is what the workload records.
db.on('error', () => {});

await db.write(() =>
  WORKLOAD_SCHEMA.split(';')
    .filter((s) => s.trim() !== '')
    .map((s) => sql.raw(s)),
);
marks.mark('mark schema');

/** Ids acknowledged so far, in mark order. */
const ackedIds: number[] = [];
let spaceFreed = false;

const kindOf = (id: number): UnitKind => {
  const [c, d, t] = mix as [number, number, number];
  // A spread-out, deterministic choice by id (Knuth's multiplicative hash).
  const r = ((Math.imul(id, 2654435761) >>> 0) % (c + d + t)) as number;
  return r < c ? 'write' : r < c + d ? 'defer' : 'tx';
};
// Deferred units never fail on purpose: their failure reaches no caller, so no mark could
// say it, and the order check would see a hole.
const plannedFailure = (id: number) =>
  failEvery > 0 && id % failEvery === 0 && kindOf(id) !== 'defer';
const sizeOf = (id: number) => (bigEvery > 0 && id % bigEvery === 0 ? 1500 : partBytes);
const unitRow = (id: number, kind: UnitKind) => ({
  id,
  kind,
  parts,
  payload: payloadFor(id, -1, 40),
});
const partRows = (id: number) =>
  Array.from({ length: parts }, (_, part) => ({
    unit_id: id,
    part,
    payload: payloadFor(id, part, sizeOf(id)),
  }));

/** Builds a unit's statements for write()/defer(); a planned failure repeats part 0 last. */
const statementsOf = (id: number, kind: UnitKind) => {
  const rows = partRows(id);
  const list = [
    db.kysely.insertInto('units').values(unitRow(id, kind)),
    ...rows.map((row) => db.kysely.insertInto('unit_parts').values(row)),
  ];
  if (plannedFailure(id)) list.push(db.kysely.insertInto('unit_parts').values(rows[0]!));
  return list;
};

const onRejected = (id: number, kind: UnitKind, error: unknown) => {
  const code = (error as { code?: string }).code ?? 'UNKNOWN';
  marks.mark(`reject ${id}`);
  summary.rejected.push({ id, kind, code, planned: plannedFailure(id) });
  if (code === 'DISK_FULL' && values['free-space-on-full'] && !spaceFreed) {
    spaceFreed = true;
    writeFileSync(join(dir, '.walrec-space-ok'), '');
  }
};

/** Set while a transaction may not have its place in the queue yet: nobody else submits. */
let gate: Promise<void> | undefined;
let nextId = start;
const lastId = start + units - 1;

async function runTransaction(id: number): Promise<void> {
  const settled = db.transaction(async (trx) => {
    await trx.insertInto('units').values(unitRow(id, 'tx')).execute();
    for (const row of partRows(id)) await trx.insertInto('unit_parts').values(row).execute();
    // Reads see the transaction's own writes.
    const seen = await trx
      .selectFrom('unit_parts')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('unit_id', '=', id)
      .executeTakeFirstOrThrow();
    if (Number(seen.n) !== parts) throw new Error(`unit ${id}: read ${seen.n} parts in its tx`);
    if (plannedFailure(id)) throw new Error(`unit ${id}: planned rollback`);
  });
  gate = nextMacrotask().then(() => {
    gate = undefined;
  });
  await settled;
}

async function caller(): Promise<void> {
  for (;;) {
    while (gate !== undefined) await gate;
    if (nextId > lastId) return;
    const id = nextId++;
    const kind = kindOf(id);
    try {
      if (kind === 'defer') {
        const queued = db.defer(() => statementsOf(id, kind));
        marks.mark(`defer ${id}`);
        deferredIds.push(id);
        summary.deferred++;
        await queued;
        // Let other callers in: a deferred unit resolves at once.
        await nextMacrotask();
        continue;
      }
      if (kind === 'write') await db.write(() => statementsOf(id, kind));
      else await runTransaction(id);
      marks.mark(`ack ${id}`);
      ackedIds.push(id);
      summary.acked++;
    } catch (error) {
      onRejected(id, kind, error);
      continue;
    }
    if (checkpointEvery > 0 && id % checkpointEvery === 0) {
      await db.checkpoint('TRUNCATE');
      summary.checkpoints++;
      marks.mark('mark checkpoint');
    }
    if (backupEvery > 0 && id % backupEvery === 0) {
      const ackedBefore = [...ackedIds];
      const deferredBefore = [...deferredIds];
      const result = await db.backup();
      summary.backups.push({ path: result.path, ackedBefore, deferredBefore });
      marks.mark('mark backup');
    }
  }
}

const t0 = performance.now();
await Promise.all(Array.from({ length: int('callers', 1) }, caller));
summary.totalMs = performance.now() - t0;
marks.mark('mark workload done');

if (end === 'close') {
  // Nothing else keeps the event loop alive: close() must (walguard-shutdown.test.ts).
  await db.close();
  // close() flushed every deferred unit (contract lines 4 and 8): each is now acknowledged.
  const rejected = new Set(summary.rejected.map((r) => r.id));
  for (const id of deferredIds) if (!rejected.has(id)) marks.mark(`ack ${id}`);
  marks.mark('mark closed');
}
marks.close();
writeSync(1, `${JSON.stringify(summary)}\n`);
if (end === 'kill') process.kill(process.pid, 'SIGKILL');
