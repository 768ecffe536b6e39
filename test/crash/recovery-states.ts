/**
 * Power loss on walguard's recovery paths (issue 10): a restore, and a new database's first
 * open, recorded under the shim (workloads/recovery.ts) and checked state by state.
 *
 * What each crash state must show:
 * - restore: after what the next open does first (`finishInterruptedRestore`, then the
 *   removal of dead temp files), the path holds the old database — every unit it had, its
 *   WAL's included — or the restored one — exactly the backup's units, and then the old files
 *   are all in a quarantine folder, still the whole old database. Never no database, never a
 *   mix, never an empty one.
 * - first open: `openDatabase` opens it (no `CORRUPT … is empty`, no raw engine error), and
 *   every unit acknowledged before the crash is there, complete.
 * The states are checked in child processes (recovery-explore-cli.ts, slices of 60): walguard
 * opens three connections per state, and libsql leaks their descriptors.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { finishInterruptedRestore, removeRestoreLeftovers } from '../../src/durability/restore.js';
import { inspectWal } from '../../src/durability/wal-inspect.js';
import { openDatabase } from '../../src/index.js';
import { checkState } from './checker.js';
import { defaultWorkDir } from './explore.js';
import { parseMarks } from './marks.js';
import { type RecordedRun, runTsForJson, runTsUnderShim } from './recorder.js';
import { type CrashReplayer, type CrashStateSpec, writeState } from './replay.js';
import type { Snapshot } from './snapshot.js';

/** The recovery workload script. */
export const RECOVERY_WORKLOAD = 'test/crash/workloads/recovery.ts';

/** A raw key for the encrypted rows (test data, not a secret). */
export const RECOVERY_KEY = 'a1'.repeat(32);

/** What a recovery state check needs to know about the run. */
export interface RecoveryJob {
  /** `restore` or `first-open`. */
  kind: 'restore' | 'first-open';
  /** The database file name in the folder. */
  dbFile: string;
  /** The raw key, for the encrypted rows. */
  key?: string;
  /** restore: units in the database replaced (its file and WAL). */
  oldUnits?: number;
  /** restore: units in the backup restored. */
  newUnits?: number;
}

/** A recorded recovery run. */
export interface RecoveryRun extends RecordedRun {
  /** The check's parameters. */
  job: RecoveryJob;
  /** The recorded folder. */
  dir: string;
  /** The operation log. */
  log: string;
}

function runWorkload(args: string[], allowFailure = false) {
  const child = runTsUnderShim(RECOVERY_WORKLOAD, args, {
    dir: args[args.indexOf('--dir') + 1]!,
    allowFailure,
  });
  return child;
}

/**
 * Records a restore: a database of `units` units (the last ones only in its WAL, left by a
 * kill -9) replaced by its backup taken after `backupAt` units. The setup runs unrecorded;
 * the folder as it left it is the replay's snapshot.
 */
export function recordRestore(
  root: string,
  options: { units: number; backupAt: number; key?: string; tag?: string },
): RecoveryRun {
  const tag = options.tag ?? `restore${options.key ? '-encrypted' : ''}`;
  const dir = join(root, tag);
  const backupDir = join(root, `${tag}-backups`);
  mkdirSync(dir, { recursive: true });
  const key = options.key === undefined ? [] : ['--key', options.key];
  const setup = runWorkload(
    [
      'setup-restore',
      '--dir',
      dir,
      '--units',
      String(options.units),
      '--backup-at',
      String(options.backupAt),
      '--backup-dir',
      backupDir,
      ...key,
    ],
    true,
  );
  if (setup.status !== null) {
    throw new Error(`setup-restore exited with ${setup.status}\n${setup.stderr}`);
  }
  const backup = (JSON.parse(setup.stdout.trim().split('\n').pop()!) as { backup: string }).backup;
  const log = join(root, `${tag}.log`);
  const run = runTsUnderShim(
    RECOVERY_WORKLOAD,
    ['restore', '--dir', dir, '--backup', backup, ...key],
    { dir, log },
  );
  return {
    ...run,
    dir,
    log,
    job: {
      kind: 'restore',
      dbFile: 'db.sqlite',
      ...(options.key === undefined ? {} : { key: options.key }),
      oldUnits: options.units,
      newUnits: options.backupAt,
    },
  };
}

/** Records a new database's first open, `units` acknowledged units, then kill -9 or close. */
export function recordFirstOpen(
  root: string,
  options: { units: number; key?: string; end?: 'kill' | 'close'; tag?: string },
): RecoveryRun {
  const tag = options.tag ?? `first-open${options.key ? '-encrypted' : ''}`;
  const dir = join(root, tag);
  const log = join(root, `${tag}.log`);
  const end = options.end ?? 'kill';
  const run = runTsUnderShim(
    RECOVERY_WORKLOAD,
    [
      'first-open',
      '--dir',
      dir,
      '--units',
      String(options.units),
      '--end',
      end,
      ...(options.key === undefined ? [] : ['--key', options.key]),
    ],
    { dir, log, allowFailure: true },
  );
  if (end === 'kill' ? run.status !== null : run.status !== 0) {
    throw new Error(`first-open exited with ${run.status}\n${run.stderr}`);
  }
  return {
    ...run,
    dir,
    log,
    job: {
      kind: 'first-open',
      dbFile: 'db.sqlite',
      ...(options.key === undefined ? {} : { key: options.key }),
    },
  };
}

/** The verdict on one recovery state. */
export interface RecoveryVerdict {
  /** Nothing is wrong. */
  ok: boolean;
  /** restore: which database the path holds; first open: `opened`. */
  shows: 'old' | 'restored' | 'opened' | 'nothing' | 'neither';
  /** One line per problem. */
  problems: string[];
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

/** Checks the state in `dir` as the file header says. */
export async function checkRecoveryState(
  dir: string,
  job: RecoveryJob,
  marks: string[],
): Promise<RecoveryVerdict> {
  const file = join(dir, job.dbFile);
  const key = job.key === undefined ? {} : { encryptionKey: job.key };
  if (job.kind === 'first-open') {
    try {
      const db = await openDatabase({
        path: file,
        logger: false,
        handleSignals: false,
        integrityCheck: 'full',
        checkpoint: { idleMs: 0 },
        ...(job.key === undefined ? {} : { encryption: { key: job.key } }),
      });
      await db.close();
    } catch (error) {
      const e = error as { code?: string; message?: string };
      return {
        ok: false,
        shows: 'nothing',
        problems: [`does not reopen: ${e.code}: ${e.message}`],
      };
    }
    const units = parseMarks(marks);
    const result = checkState(dir, { acked: units.acked, dbFile: job.dbFile, ...key });
    return { ok: result.ok, shows: 'opened', problems: result.problems };
  }
  try {
    await finishInterruptedRestore(file);
    await removeRestoreLeftovers(file);
  } catch (error) {
    return {
      ok: false,
      shows: 'nothing',
      problems: [`the open's restore step failed: ${(error as Error).message}`],
    };
  }
  const oldUnits = job.oldUnits!;
  const newUnits = job.newUnits!;
  const result = checkState(dir, { acked: range(newUnits), dbFile: job.dbFile, ...key });
  if (!result.dbExists)
    return { ok: false, shows: 'nothing', problems: ['no database at the path'] };
  if (!result.ok) return { ok: false, shows: 'neither', problems: result.problems };
  if (result.present === oldUnits) return { ok: true, shows: 'old', problems: [] };
  if (result.present !== newUnits) {
    return {
      ok: false,
      shows: 'neither',
      problems: [
        `holds ${result.present} units: neither the old database (${oldUnits}) nor the backup (${newUnits})`,
      ],
    };
  }
  // Restored: the old database must be whole in its quarantine folder.
  const quarantine = readdirSync(dir).find((n) => n.startsWith(`${job.dbFile}.corrupted.`));
  if (quarantine === undefined) {
    return { ok: false, shows: 'restored', problems: ['restored, but no quarantine folder'] };
  }
  const old = checkState(join(dir, quarantine), {
    acked: range(oldUnits),
    dbFile: job.dbFile,
    ...key,
  });
  const problems = old.ok ? [] : old.problems.map((p) => `quarantined old database: ${p}`);
  if (old.ok && old.present !== oldUnits) {
    problems.push(`the quarantined old database holds ${old.present} units, not ${oldUnits}`);
  }
  return { ok: problems.length === 0, shows: 'restored', problems };
}

/** What an exploration of recovery states found. */
export interface RecoveryReport {
  /** States checked (identical ones once). */
  states: number;
  /** States that passed. */
  ok: number;
  /** How many showed each outcome. */
  shows: Record<RecoveryVerdict['shows'], number>;
  /** The first failures. */
  failures: { point: number; subset: string; problems: string[] }[];
  /** Wall time, ms. */
  elapsedMs: number;
}

function emptyReport(): RecoveryReport {
  return {
    states: 0,
    ok: 0,
    shows: { old: 0, restored: 0, opened: 0, nothing: 0, neither: 0 },
    failures: [],
    elapsedMs: 0,
  };
}

/** Materialises and checks `specs` of `replayer` in this process. */
export async function exploreRecoveryStates(
  replayer: CrashReplayer,
  specs: readonly CrashStateSpec[],
  job: RecoveryJob,
): Promise<RecoveryReport> {
  const started = performance.now();
  const root = mkdtempSync(join(defaultWorkDir(), 'walguard-recovery-'));
  const report = emptyReport();
  const seen = new Set<string>();
  try {
    for (const spec of [...specs].sort((a, b) => a.point - b.point)) {
      const state = replayer.state(spec);
      if (seen.has(state.key)) continue;
      seen.add(state.key);
      const dir = join(root, `s${report.states}`);
      writeState(state, dir);
      const verdict = await checkRecoveryState(dir, job, state.marks);
      report.states++;
      report.shows[verdict.shows]++;
      if (verdict.ok) report.ok++;
      else if (report.failures.length < 20) {
        report.failures.push({
          point: spec.point,
          subset: spec.subset.kind,
          problems: verdict.problems,
        });
      }
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  report.elapsedMs = performance.now() - started;
  return report;
}

/** The snapshot as a file a child process can read back (inode numbers kept). */
export function saveSnapshot(snapshot: Snapshot, file: string): void {
  writeFileSync(
    file,
    JSON.stringify(
      snapshot.files.map((f) => ({ ...f, data: Buffer.from(f.data).toString('base64') })),
    ),
  );
}

/** Reads what `saveSnapshot` wrote. */
export function loadSnapshot(file: string): Snapshot {
  const files = JSON.parse(readFileSync(file, 'utf8')) as {
    name: string;
    ino: number;
    data: string;
  }[];
  return { files: files.map((f) => ({ ...f, data: Buffer.from(f.data, 'base64') })) };
}

/**
 * Checks `specs` in child processes (recovery-explore-cli.ts), `slice` states each, `jobs` at a
 * time, and sums their reports.
 */
export async function exploreRecoveryInChildren(
  run: RecoveryRun,
  specs: readonly CrashStateSpec[],
  options: { work: string; slice?: number; jobs?: number; model?: 'strict' | 'ext4-like' },
): Promise<RecoveryReport> {
  const slice = options.slice ?? 60;
  mkdirSync(options.work, { recursive: true });
  const snapshotFile = join(options.work, `${run.job.kind}-snapshot.json`);
  saveSnapshot(run.snapshot, snapshotFile);
  const tasks: (() => Promise<RecoveryReport>)[] = [];
  for (let i = 0; i * slice < specs.length; i++) {
    const jobFile = join(options.work, `${run.job.kind}-${run.job.key ? 'enc-' : ''}${i}.json`);
    writeFileSync(
      jobFile,
      JSON.stringify({
        log: run.log,
        snapshot: snapshotFile,
        model: options.model ?? 'strict',
        job: run.job,
        specs: specs.slice(i * slice, (i + 1) * slice),
      }),
    );
    tasks.push(() => exploreChild(jobFile));
  }
  const reports: RecoveryReport[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(options.jobs ?? 2, tasks.length) }, async () => {
      while (next < tasks.length) reports.push(await tasks[next++]!());
    }),
  );
  const total = emptyReport();
  for (const r of reports) {
    total.states += r.states;
    total.ok += r.ok;
    total.elapsedMs += r.elapsedMs;
    for (const k of Object.keys(r.shows) as (keyof RecoveryReport['shows'])[]) {
      total.shows[k] += r.shows[k];
    }
    total.failures.push(...r.failures.slice(0, Math.max(0, 20 - total.failures.length)));
  }
  return total;
}

function exploreChild(jobFile: string): Promise<RecoveryReport> {
  return runTsForJson<RecoveryReport>('test/crash/recovery-explore-cli.ts', [jobFile]);
}

/** What the WAL inspector made of the crash states of a log. */
export interface WalInspectorReport {
  /** States read. */
  states: number;
  /** States with at least one WAL frame. */
  withFrames: number;
  /** States taken for damage (a false alarm: each would refuse the open). */
  flagged: number;
  /** States a rule with `minDroppedCommits` (the control) takes for damage, when asked. */
  flaggedByControl: number;
}

/**
 * Reads the `-wal` of each crash state with the WAL inspector (and, given `control`, with
 * that `minDroppedCommits` too). Only the WAL is written out, to one scratch file: the
 * inspector reads nothing else.
 */
export async function inspectWalStates(
  replayer: CrashReplayer,
  specs: readonly CrashStateSpec[],
  options: { walFile: string; control?: number },
): Promise<WalInspectorReport> {
  const work = mkdtempSync(join(defaultWorkDir(), 'walguard-walcheck-'));
  const db = join(work, 'db.sqlite');
  const report: WalInspectorReport = { states: 0, withFrames: 0, flagged: 0, flaggedByControl: 0 };
  try {
    for (const spec of specs) {
      const wal = replayer.state(spec).files.get(options.walFile);
      rmSync(`${db}-wal`, { force: true });
      if (wal !== undefined) writeFileSync(`${db}-wal`, wal);
      const found = await inspectWal(db);
      report.states++;
      if (found.frames > 0) report.withFrames++;
      if (found.damage !== null) report.flagged++;
      if (options.control !== undefined) {
        const control = await inspectWal(db, { minDroppedCommits: options.control });
        if (control.damage !== null) report.flaggedByControl++;
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return report;
}
