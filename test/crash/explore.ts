/**
 * Power-loss exploration: plan crash states from an operation log, write
 * each into a fresh folder, check it, and count what went wrong.
 *
 * States are checked in ascending crash-point order (the replayer's fast
 * path), identical states (same files, same marks) once. Each folder is
 * emptied and removed after its check; the files are truncated first because
 * libsql's leaked fds would otherwise keep their space allocated.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CheckOptions, type CheckResult, checkState } from './checker.js';
import { type MarkedUnits, parseMarks } from './marks.js';
import {
  type CrashReplayer,
  type CrashStateSpec,
  type PendingSubset,
  type PlanOptions,
  writeState,
} from './replay.js';

/** Options of {@link exploreCrashStates}. */
export interface ExploreOptions {
  /** The replayer of the recorded log (its snapshot and model decide the states). */
  replayer: CrashReplayer;
  /** Which states to check; default `replayer.plan(plan)`. */
  specs?: readonly CrashStateSpec[];
  /** Plan options, when `specs` is not given. */
  plan?: PlanOptions;
  /** Database file name inside the folder (default `db.sqlite`). */
  dbFile?: string;
  /** Encryption key of the database. */
  encryptionKey?: string;
  /** Integrity check level (default `full`). */
  integrity?: 'full' | 'quick' | 'none';
  /** Check submission order (default true). */
  checkOrder?: boolean;
  /** Turns the marks before a crash point into unit lists (default {@link parseMarks}). */
  units?: (marks: string[]) => MarkedUnits;
  /** Parent folder of the state folders (default /dev/shm when present, else the OS tmpdir). */
  workDir?: string;
  /** Keep (do not delete) the folders of up to this many failing states (default 0). */
  keepFailures?: number;
  /** Stop after this many failing states (default: never). */
  stopAfterFailures?: number;
  /** Reads the units present in a state, for a workload with its own schema (see {@link CheckOptions.presentUnits}). */
  presentUnits?: CheckOptions['presentUnits'];
  /** Called after each checked state with the report so far and the number of specs planned. */
  onProgress?: (report: Readonly<ExploreReport>, planned: number) => void;
}

/** One failing state, for reports. */
export interface StateFailure {
  /** Crash point. */
  point: number;
  /** Pending subset. */
  subset: PendingSubset;
  /** Pending operations at the point / applied in the state. */
  pendingCount: number;
  appliedCount: number;
  /** The checker's verdict. */
  result: CheckResult;
  /** Folder of the state, when kept. */
  dir?: string;
}

/** What an exploration found. */
export interface ExploreReport {
  /** States checked (duplicates not counted). */
  states: number;
  /** Planned states skipped as identical to one already checked. */
  duplicates: number;
  /** States that passed every check. */
  ok: number;
  /** States that lost at least one acknowledged unit. */
  lostAcked: number;
  /** States with a damaged database (open/read error, integrity failure or partial unit). */
  corrupt: number;
  /** Of those: the database could not be opened or read (e.g. SQLITE_NOTADB, SQLITE_CORRUPT). */
  unreadable: number;
  /** Of those: `PRAGMA integrity_check` reported problems. */
  integrityFailed: number;
  /** Of those: a unit was present in part. */
  partialUnits: number;
  /** States with units out of submission order. */
  outOfOrder: number;
  /** States holding a unit reported as failed. */
  rejectedPresent: number;
  /** Most acknowledged units lost in one state. */
  maxLostAcked: number;
  /** Acknowledged units lost, summed over the states (a unit lost in three states counts three times). */
  lostAckedTotal: number;
  /** Checked states per subset kind. */
  bySubset: Record<PendingSubset['kind'], number>;
  /** Failing states: the first 50, plus damaged ones up to 100 in all. */
  failures: StateFailure[];
  /** Wall time in milliseconds. */
  elapsedMs: number;
  /** Checked states per second. */
  statesPerSecond: number;
}

/** The default parent folder for state folders: memory-backed when available. */
export function defaultWorkDir(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

const emptyFolder = (dir: string): void => {
  for (const name of readdirSync(dir)) {
    try {
      truncateSync(join(dir, name), 0);
    } catch {
      // Not a regular file: removed below all the same.
    }
  }
  rmSync(dir, { recursive: true, force: true });
};

/** Plans, materialises and checks crash states; see {@link ExploreOptions}. */
export function exploreCrashStates(options: ExploreOptions): ExploreReport {
  const started = performance.now();
  const { replayer } = options;
  const specs = [...(options.specs ?? replayer.plan(options.plan))].sort(
    (a, b) => a.point - b.point,
  );
  const toUnits = options.units ?? parseMarks;
  const parent = options.workDir ?? defaultWorkDir();
  mkdirSync(parent, { recursive: true });
  const root = mkdtempSync(join(parent, 'walguard-crash-'));
  const report: ExploreReport = {
    states: 0,
    duplicates: 0,
    ok: 0,
    lostAcked: 0,
    corrupt: 0,
    unreadable: 0,
    integrityFailed: 0,
    partialUnits: 0,
    outOfOrder: 0,
    rejectedPresent: 0,
    maxLostAcked: 0,
    lostAckedTotal: 0,
    bySubset: { none: 0, all: 0, prefix: 0, random: 0, torn: 0 },
    failures: [],
    elapsedMs: 0,
    statesPerSecond: 0,
  };
  const seen = new Set<string>();
  let kept = 0;
  let failing = 0;
  try {
    for (const spec of specs) {
      const state = replayer.state(spec);
      if (seen.has(state.key)) {
        report.duplicates++;
        continue;
      }
      seen.add(state.key);
      const dir = join(root, `s${report.states}`);
      writeState(state, dir);
      const units = toUnits(state.marks);
      const result = checkState(dir, {
        acked: units.acked,
        deferred: units.deferred,
        rejected: units.rejected,
        checkOrder: options.checkOrder ?? true,
        dbFile: options.dbFile ?? 'db.sqlite',
        ...(options.encryptionKey !== undefined ? { encryptionKey: options.encryptionKey } : {}),
        integrity: options.integrity ?? 'full',
        ...(options.presentUnits !== undefined ? { presentUnits: options.presentUnits } : {}),
      });
      report.states++;
      report.bySubset[spec.subset.kind]++;
      let keep = false;
      if (result.ok) {
        report.ok++;
      } else {
        failing++;
        if (result.lostAcked.length > 0) report.lostAcked++;
        if (result.corrupt) report.corrupt++;
        if (result.error !== undefined) report.unreadable++;
        if (result.integrity.length > 0 && result.integrity[0] !== 'ok') report.integrityFailed++;
        if (result.partial.length > 0) report.partialUnits++;
        if (result.outOfOrder.length > 0) report.outOfOrder++;
        if (result.rejectedPresent.length > 0) report.rejectedPresent++;
        report.maxLostAcked = Math.max(report.maxLostAcked, result.lostAcked.length);
        report.lostAckedTotal += result.lostAcked.length;
        keep = kept < (options.keepFailures ?? 0);
        const room =
          report.failures.length < 50 || (result.corrupt && report.failures.length < 100);
        if (room) {
          report.failures.push({
            point: spec.point,
            subset: spec.subset,
            pendingCount: state.pendingCount,
            appliedCount: state.appliedCount,
            result,
            ...(keep ? { dir } : {}),
          });
        }
      }
      if (keep) kept++;
      else emptyFolder(dir);
      options.onProgress?.(report, specs.length);
      if (options.stopAfterFailures !== undefined && failing >= options.stopAfterFailures) break;
    }
  } finally {
    if (kept === 0) rmSync(root, { recursive: true, force: true });
  }
  report.elapsedMs = performance.now() - started;
  report.statesPerSecond = report.states / (report.elapsedMs / 1000);
  return report;
}

/** One line per failing state (at most `limit`), for test messages and logs. */
export function formatFailures(report: ExploreReport, limit = 5): string {
  return report.failures
    .slice(0, limit)
    .map(
      (f) =>
        `K=${f.point} ${f.subset.kind} (${f.appliedCount}/${f.pendingCount} pending applied): ` +
        f.result.problems.join(' | ') +
        (f.dir ? ` [kept in ${f.dir}]` : ''),
    )
    .join('\n');
}
