/**
 * `walguard checkpoint`, `vacuum` and `optimize`: maintenance that writes, so it runs only
 * while no app has the database open.
 *
 * Strategy: the CLI takes walguard's process lock (`LOCKED` while the app runs: the app
 * checkpoints itself, and a VACUUM under a running writer would stall it), then the SQLite
 * child opens the database with every setting the writer would apply (read back and
 * verified, as `openDatabase` does) and runs the statement. VACUUM and ANALYZE cannot run
 * inside walguard's batched transactions (SQLite refuses VACUUM in a transaction), which is
 * why these use a connection of their own rather than `openDatabase`. Each ends with
 * `wal_checkpoint(TRUNCATE)`, so the WAL they wrote is folded back and the file left small.
 *
 * Not guaranteed: VACUUM needs free disk space of about twice the database (a temporary
 * copy, then the WAL); if the disk fills it fails with nothing lost (`DISK_FULL`).
 */
import { performance } from 'node:perf_hooks';
import { connectionSettingsOf } from '../durability/connection-settings.js';
import { acquireProcessLock, type ProcessLock } from '../durability/process-lock.js';
import type { CheckpointMode } from '../queue/protocol.js';
import type { CommandContext, CommandResult, CommandSpec } from './command.js';
import { fileFacts } from './database-facts.js';
import { CliError, EXIT } from './exit-codes.js';
import { formatBytes, formatDuration } from './format.js';
import { readProbe, writeProbe } from './progress.js';
import {
  type CheckpointTaskResult,
  type MaintenanceTaskResult,
  runSqlChild,
  type SqlTask,
} from './sql-child.js';
import { explainChildError, type Target, unlock } from './target.js';

const MODES: readonly CheckpointMode[] = ['PASSIVE', 'FULL', 'RESTART', 'TRUNCATE'];

const dbArg = [
  { name: 'db', required: false, help: 'the database file (default: `path` of --config)' },
] as const;

const commonExitCodes: [number, string][] = [
  [EXIT.LOCKED, 'the app (or another process) has the database open; nothing was done'],
  [EXIT.WRONG_KEY, 'the key does not open the database'],
  [EXIT.KEY_REQUIRED, 'the database is encrypted and no key was given'],
  [EXIT.NOT_ENCRYPTED, 'a key was given for a plaintext database'],
  [EXIT.CORRUPT, 'the database cannot be read'],
  [EXIT.NOT_FOUND, 'there is no file at the path'],
  [EXIT.PROBLEM, 'the operation failed (disk full, I/O error)'],
];

/** Size of the database and its WAL. */
function sizes(target: Target): { db: number; wal: number } {
  return {
    db: fileFacts(target.path)?.bytes ?? 0,
    wal: fileFacts(`${target.path}-wal`)?.bytes ?? 0,
  };
}

/** Runs `task` under the process lock, with progress; returns its value and the sizes around it. */
async function underLock<T>(
  context: CommandContext,
  label: string,
  task: (target: Target, key: string | undefined) => SqlTask,
): Promise<{
  target: Target;
  value: T;
  before: { db: number; wal: number };
  after: { db: number; wal: number };
  durationMs: number;
}> {
  const target = await context.target();
  // Checked before the lock, which would otherwise leave a `<db>.lock` beside nothing.
  if (fileFacts(target.path) === null) {
    throw new CliError('NOT_FOUND', `There is no database at ${target.path}`, {
      path: target.path,
    });
  }
  const lock: ProcessLock = await acquireProcessLock(target.path, {
    waitMs: target.resolved.lockWaitMs,
  });
  try {
    const unlocked = await unlock(target);
    const before = sizes(target);
    const progress = context.progress(label);
    const started = performance.now();
    let value: T;
    try {
      value = await runSqlChild<T>(task(target, unlocked.key.key), {
        onStart: (pid) => progress.watch(readProbe(pid, before.db + before.wal), 0.99),
        onPhase: (phase, pid) => {
          // VACUUM reads the database quickly, then writes the new file for most of its run:
          // no total is known for that, so the line counts bytes written instead of stalling
          // at 99%. A checkpoint's total is the WAL it copies.
          if (phase === 'vacuum')
            progress.phase(`${label}: rebuilding the file`, writeProbe(pid), 1, 'written');
          if (phase === 'checkpoint') {
            progress.phase(
              `${label}: checkpointing the WAL`,
              readProbe(pid, sizes(target).wal),
              0.99,
            );
          }
        },
      });
    } catch (error) {
      progress.stop('failed', label);
      throw explainChildError(error, unlocked.key, target);
    }
    progress.stop('done', label);
    return {
      target,
      value,
      before,
      after: sizes(target),
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await lock.release();
  }
}

export const checkpointCommand: CommandSpec = {
  name: 'checkpoint',
  summary: 'Fold the WAL back into the database (default mode TRUNCATE)',
  args: dbArg,
  options: {
    mode: {
      type: 'string',
      valueName: 'MODE',
      help: 'PASSIVE, FULL, RESTART or TRUNCATE (default TRUNCATE: also shrinks the WAL to 0 bytes)',
    },
  },
  description: `Runs PRAGMA wal_checkpoint(MODE) with the app stopped (a running app checkpoints by
itself: when idle, and when the WAL passes checkpoint.walSizeLimitBytes; if its WAL
keeps growing, see docs/recovery.md). TRUNCATE, the default here, copies every frame
into the database and truncates the WAL to zero bytes.`,
  json: '`database`, `mode`, `busy`, `logFrames`, `checkpointedFrames`, `walBytesBefore`, `walBytesAfter`, `durationMs`.',
  exitCodes: [[EXIT.PROBLEM, 'the checkpoint could not finish (busy)'], ...commonExitCodes],
  async run(context) {
    const given = context.values.mode as string | undefined;
    const mode = (given ?? 'TRUNCATE').toUpperCase() as CheckpointMode;
    if (!MODES.includes(mode)) {
      throw new CliError(
        'USAGE',
        `Expected --mode to be one of ${MODES.join(', ')}, got \`${given}\``,
      );
    }
    const r = await underLock<CheckpointTaskResult>(context, `checkpoint ${mode}`, (t, key) => ({
      op: 'checkpoint',
      path: t.path,
      key,
      settings: connectionSettingsOf(t.resolved),
      mode,
    }));
    const data: Record<string, unknown> = {
      database: r.target.path,
      mode,
      ...r.value,
      walBytesBefore: r.before.wal,
      walBytesAfter: r.after.wal,
      durationMs: r.durationMs,
    };
    if (r.value.busy) {
      data.error = {
        code: 'PROBLEM',
        message: 'The checkpoint could not finish: a connection held the WAL',
      };
    }
    const text = `${r.target.path}: checkpoint ${mode} ${r.value.busy ? 'could not finish (busy)' : 'done'}: ${r.value.checkpointedFrames} of ${r.value.logFrames} frames copied; WAL ${formatBytes(r.before.wal)} → ${formatBytes(r.after.wal)} (${formatDuration(r.durationMs)})\n`;
    return { exitCode: r.value.busy ? EXIT.PROBLEM : EXIT.OK, data, text };
  },
};

function maintenanceResult(
  name: string,
  r: Awaited<ReturnType<typeof underLock<MaintenanceTaskResult>>>,
): CommandResult {
  const data = {
    database: r.target.path,
    ...r.value,
    bytesBefore: r.before.db,
    bytesAfter: r.after.db,
    walBytesAfter: r.after.wal,
    durationMs: r.durationMs,
  };
  const stat = r.value.statRows === undefined ? '' : `, ${r.value.statRows} statistics rows`;
  const text = `${r.target.path}: ${name} done in ${formatDuration(r.durationMs)}: ${formatBytes(r.before.db)} → ${formatBytes(r.after.db)}, free pages ${r.value.freePagesBefore} → ${r.value.freePagesAfter}${stat}\n`;
  return { exitCode: EXIT.OK, data, text };
}

export const vacuumCommand: CommandSpec = {
  name: 'vacuum',
  summary: 'Rebuild the database file to reclaim free pages',
  args: dbArg,
  options: {},
  description: `Runs VACUUM with the app stopped: the database is rewritten without its free pages
(deleted data), which shrinks the file and defragments it, then the WAL is truncated.
Needs free disk space of about twice the database's size. An encrypted database stays
encrypted with the same key.`,
  json: '`database`, `pagesBefore`, `pagesAfter`, `freePagesBefore`, `freePagesAfter`, `bytesBefore`, `bytesAfter`, `walBytesAfter`, `durationMs`.',
  exitCodes: commonExitCodes,
  async run(context) {
    const r = await underLock<MaintenanceTaskResult>(context, 'vacuum', (t, key) => ({
      op: 'vacuum',
      path: t.path,
      key,
      settings: connectionSettingsOf(t.resolved),
    }));
    return maintenanceResult('vacuum', r);
  },
};

export const optimizeCommand: CommandSpec = {
  name: 'optimize',
  summary: 'Refresh the query planner statistics (ANALYZE, PRAGMA optimize)',
  args: dbArg,
  options: {},
  description: `Runs ANALYZE and PRAGMA optimize with the app stopped, so the query planner has
fresh statistics about every table and index (stored in sqlite_stat1), then truncates
the WAL. Worth running after a large import or when queries that used to be fast slow
down.`,
  json: '`database`, `statRows`, `pagesBefore`, `pagesAfter`, `freePagesBefore`, `freePagesAfter`, `bytesBefore`, `bytesAfter`, `walBytesAfter`, `durationMs`.',
  exitCodes: commonExitCodes,
  async run(context) {
    const r = await underLock<MaintenanceTaskResult>(context, 'optimize', (t, key) => ({
      op: 'optimize',
      path: t.path,
      key,
      settings: connectionSettingsOf(t.resolved),
    }));
    return maintenanceResult('optimize', r);
  },
};
