/**
 * The walguard crash workloads by name, at two scales (`sample` for `npm test`, `full` for
 * `npm run crash`), and what a test or the full runner needs around them: recording one
 * under the shim, the encryption key its checker needs, and the check of the backups it took.
 *
 * Each workload is workloads/walguard.ts with a set of flags; see that file for what a unit
 * is and for the marks. The folder starts empty, so replays start from an empty snapshot.
 */
import { mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { deriveKey, readKeyFile } from '../../src/durability/key-file.js';
import { type CheckResult, checkState } from './checker.js';
import { parseMarks } from './marks.js';
import { type RecordedRun, runTsUnderShim, type ShimOptions } from './recorder.js';
import type { FailedSyncModel } from './replay.js';
import type { WalguardWorkloadSummary } from './workloads/walguard.js';

/** The workload script. */
export const WALGUARD_WORKLOAD = 'test/crash/workloads/walguard.ts';

/** How big a run is. */
export type Scale = 'sample' | 'full';

/** A named walguard workload. */
export interface WalguardWorkload {
  /** Short name, used in tables and folder names. */
  name: string;
  /** One line: what it exercises. */
  description: string;
  /** walguard's `synchronous`. */
  sync: 'FULL' | 'NORMAL';
  /** Units submitted, per scale. */
  units: Record<Scale, number>;
  /** Workload flags other than --dir, --units, --sync (and --backup-dir). */
  args: readonly string[];
  /** The database is encrypted with this passphrase. */
  passphrase?: string;
  /** The workload takes backups (into a folder beside the recorded one, not inside it). */
  backups?: boolean;
  /** Shim settings (fault injection). */
  shim?: Omit<ShimOptions, 'dir' | 'log'>;
  /** Distinct crash states the full exploration checks, when fewer than `--states` will do (controls, faults). */
  fullStates?: number;
  /** What the contract says of its crash states: none may fail, or (a control) some lose acknowledged units. */
  expect: 'holds' | 'loses-acked';
  /** Only crash points from the first injected fault on are explored (fault workloads). */
  fromFault?: boolean;
  /** What a failed fsync does to unsynced writes in the replay (default `retry`). */
  failedSync?: FailedSyncModel;
}

/** A passphrase for the encrypted workloads (not a secret: test data). */
export const TEST_PASSPHRASE = 'crash harness passphrase';

/** Every workload of the full exploration, in table order. */
export const WALGUARD_WORKLOADS: readonly WalguardWorkload[] = [
  {
    name: 'concurrent-critical',
    description: '16 callers, critical write() units only; ends with close()',
    sync: 'FULL',
    units: { sample: 150, full: 500 },
    args: ['--callers', '16', '--mix', '1:0:0', '--end', 'close'],
    expect: 'holds',
  },
  {
    name: 'mixed-deferred',
    description: 'critical and deferred units (2:1), planned unit failures; ends with close()',
    sync: 'FULL',
    units: { sample: 200, full: 500 },
    args: ['--callers', '8', '--mix', '2:1:0', '--fail-every', '23', '--end', 'close'],
    expect: 'holds',
  },
  {
    name: 'transactions',
    description:
      'interactive transactions with writes and deferred units, planned rollbacks; ends with kill -9',
    sync: 'FULL',
    units: { sample: 200, full: 500 },
    args: ['--callers', '8', '--mix', '1:1:2', '--fail-every', '17', '--end', 'kill'],
    expect: 'holds',
  },
  {
    name: 'checkpoints',
    description:
      "db.checkpoint('TRUNCATE') about every 40 units, walSizeLimitBytes 64 KiB, autocheckpoint 16 pages; ends with kill -9",
    sync: 'FULL',
    units: { sample: 400, full: 500 },
    args: [
      '--callers',
      '8',
      '--mix',
      '2:1:1',
      '--checkpoint-every',
      '40',
      '--wal-limit',
      '65536',
      '--autocheckpoint',
      '16',
      '--end',
      'kill',
    ],
    expect: 'holds',
  },
  {
    name: 'backup',
    description:
      'db.backup() about every 80 units (each backup checked too) while writing; ends with kill -9',
    sync: 'FULL',
    units: { sample: 200, full: 500 },
    args: ['--callers', '8', '--mix', '2:1:1', '--autocheckpoint', '200', '--end', 'kill'],
    backups: true,
    expect: 'holds',
  },
  {
    name: 'encrypted',
    description:
      'passphrase-encrypted, mixed units, checkpoints every 100 units; ends with close()',
    sync: 'FULL',
    units: { sample: 120, full: 450 },
    args: [
      '--callers',
      '8',
      '--mix',
      '2:1:1',
      '--checkpoint-every',
      '100',
      '--autocheckpoint',
      '100',
      '--end',
      'close',
    ],
    passphrase: TEST_PASSPHRASE,
    expect: 'holds',
  },
  {
    name: 'normal-control',
    description: 'concurrent-critical under synchronous=NORMAL: the checker must see lost units',
    sync: 'NORMAL',
    units: { sample: 150, full: 400 },
    args: ['--callers', '16', '--mix', '1:0:0', '--autocheckpoint', '64', '--end', 'kill'],
    fullStates: 3000,
    expect: 'loses-acked',
  },
  {
    name: 'enospc',
    description: 'disk full in the middle of a batch (ENOSPC after 250 kB), then space returns',
    sync: 'FULL',
    units: { sample: 120, full: 300 },
    args: [
      '--callers',
      '16',
      '--mix',
      '1:0:0',
      '--part-bytes',
      '1500',
      '--big-every',
      '0',
      '--free-space-on-full',
      '--end',
      'close',
    ],
    shim: { enospcAfterBytes: 250_000 },
    fullStates: 5000,
    expect: 'holds',
    fromFault: true,
  },
  {
    name: 'eio-fsync',
    description: 'EIO from the 12th fsync (a batch COMMIT), writer reopens and fences',
    sync: 'FULL',
    units: { sample: 120, full: 400 },
    args: ['--callers', '8', '--mix', '1:0:0', '--end', 'kill'],
    shim: { eioFsyncN: 12 },
    fullStates: 5000,
    expect: 'holds',
    fromFault: true,
  },
  {
    name: 'eio-fsync-deferred',
    description:
      'EIO from the 12th fsync after deferred-only (NORMAL) commits; the failed fsync loses the unsynced WAL tail (Linux)',
    sync: 'FULL',
    units: { sample: 200, full: 400 },
    args: ['--callers', '1', '--mix', '1:3:0', '--flush-ms', '0', '--end', 'kill'],
    shim: { eioFsyncN: 12 },
    failedSync: 'drop',
    fullStates: 5000,
    expect: 'holds',
    fromFault: true,
  },
];

/** The workload named `name`. */
export function walguardWorkload(name: string): WalguardWorkload {
  const found = WALGUARD_WORKLOADS.find((w) => w.name === name);
  if (found === undefined) throw new Error(`No walguard crash workload named \`${name}\``);
  return found;
}

/** A recorded run of a walguard workload. */
export interface WalguardRun extends RecordedRun {
  /** The workload. */
  workload: WalguardWorkload;
  /** The recorded folder (the database is `db.sqlite` in it). */
  dir: string;
  /** The operation log. */
  log: string;
  /** What the workload printed. */
  summary: WalguardWorkloadSummary;
  /** The raw key the database is encrypted with (derived from the key file), if encrypted. */
  encryptionKey?: string;
  /** The backup folder, if the workload took backups. */
  backupDir?: string;
}

/** Options of {@link recordWalguard}. */
export interface RecordOptions {
  /** Parent folder: the run gets `<root>/<name>/` and `<root>/<name>.log`. */
  root: string;
  /** Scale of the run. */
  scale: Scale;
  /** Units to submit instead of the workload's count for the scale. */
  units?: number;
  /** More workload flags (after the workload's own: later flags win). */
  extraArgs?: readonly string[];
  /** Folder name instead of the workload's name. */
  tag?: string;
}

/** Backups are taken every this many units at the full scale (less often would leave few). */
const backupEvery = (units: number) => String(Math.max(50, Math.floor(units / 6)));

/** Runs a workload under the shim and returns the log, its summary and the key. */
export async function recordWalguard(
  workload: WalguardWorkload,
  options: RecordOptions,
): Promise<WalguardRun> {
  const tag = options.tag ?? workload.name;
  const dir = join(options.root, tag);
  const log = join(options.root, `${tag}.log`);
  const units = options.units ?? workload.units[options.scale];
  const args = ['--dir', dir, '--units', String(units), '--sync', workload.sync, ...workload.args];
  let backupDir: string | undefined;
  if (workload.passphrase !== undefined) args.push('--passphrase', workload.passphrase);
  if (workload.backups) {
    // Outside the recorded folder: a backup is another file set, checked on its own below.
    backupDir = join(options.root, `${tag}-backups`);
    mkdirSync(backupDir, { recursive: true });
    args.push('--backup-dir', backupDir, '--backup-every', backupEvery(units));
  }
  args.push(...(options.extraArgs ?? []));
  // A run that ends with kill -9 exits by a signal (status null); one that closes exits 0.
  const run = runTsUnderShim(WALGUARD_WORKLOAD, args, {
    dir,
    log,
    ...workload.shim,
    allowFailure: true,
  });
  const line = run.stdout.trim().split('\n').pop() ?? '';
  let summary: WalguardWorkloadSummary | undefined;
  try {
    summary = JSON.parse(line) as WalguardWorkloadSummary;
  } catch {
    // Reported below.
  }
  const ended = summary?.end === 'kill' ? run.status === null : run.status === 0;
  if (summary === undefined || !ended) {
    throw new Error(
      `${workload.name}: the workload exited with ${run.status} and ` +
        `${summary ? `ended by ${summary.end}` : 'no summary'}\n${run.stderr}\n${run.stdout}`,
    );
  }
  const out: WalguardRun = { ...run, workload, dir, log, summary };
  if (workload.passphrase !== undefined) {
    out.encryptionKey = await encryptionKeyOf(join(dir, 'db.sqlite'), workload.passphrase);
  }
  if (backupDir !== undefined) out.backupDir = backupDir;
  return out;
}

/** The raw key of a passphrase-encrypted database, from its key file (as walguard derives it). */
export async function encryptionKeyOf(dbPath: string, passphrase: string): Promise<string> {
  const info = await readKeyFile(dbPath);
  if (info === undefined) throw new Error(`${dbPath} has no key file`);
  return deriveKey(passphrase, info);
}

/** The marks of a run, sorted into units. */
export function unitsOf(run: RecordedRun) {
  return parseMarks(run.ops.flatMap((op) => (op.kind === 'mark' ? [op.text] : [])));
}

/** The first injected fault in a run's log (its op index), or undefined. */
export function firstFault(run: RecordedRun): number | undefined {
  const at = run.ops.findIndex((op) => op.kind === 'fault');
  return at < 0 ? undefined : at;
}

/** The verdict on one backup a workload took. */
export interface BackupCheck {
  /** The backup file. */
  path: string;
  /** Units it had to hold (acknowledged before backup() was called). */
  required: number;
  /** The checker's verdict: complete units, every required one present, order kept. */
  result: CheckResult;
}

/**
 * Checks every backup a run took, in a fresh connection: it passes `integrity_check`, holds
 * every unit acknowledged before `backup()` was called, no unit in part, no rejected unit,
 * and its units are in submission order.
 */
export function checkBackups(run: WalguardRun): BackupCheck[] {
  const rejected = run.summary.rejected.map((r) => r.id);
  return run.summary.backups.map((b) => ({
    path: b.path,
    required: b.ackedBefore.length,
    result: checkState(dirname(b.path), {
      dbFile: basename(b.path),
      acked: b.ackedBefore,
      deferred: b.deferredBefore,
      rejected,
      ...(run.encryptionKey !== undefined ? { encryptionKey: run.encryptionKey } : {}),
    }),
  }));
}
