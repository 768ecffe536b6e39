/**
 * `walguard backup <db> [--to DIR]`: the library's verified online backup (`takeBackup`),
 * with a progress bar measured on the copy being written.
 */
import path from 'node:path';
import { backupDatabaseOf, takeBackup } from '../durability/backups.js';
import type { CommandSpec } from './command.js';
import { fileFacts } from './database-facts.js';
import { EXIT } from './exit-codes.js';
import { formatBytes, formatDuration } from './format.js';
import { fileSizeProbe } from './progress.js';
import { unlock } from './target.js';

export const backupCommand: CommandSpec = {
  name: 'backup',
  summary: 'Write a verified online backup (works while the app runs)',
  args: [{ name: 'db', required: false, help: 'the database file (default: `path` of --config)' }],
  options: {
    to: {
      type: 'string',
      valueName: 'DIR',
      help: 'backup folder (default: backup.dir of the config, or backups/ beside the database)',
    },
  },
  description: `Writes a consistent copy of the database with VACUUM INTO (from a read snapshot, so
the app keeps writing meanwhile), fsyncs it, verifies it with quick_check in a fresh
process, copies the key file beside it (a passphrase database's backup needs it), writes
its manifest <backup>.json (the database's file name, path and identity), and renames it
to <database file name>.<UTC timestamp>.db (mode 0600; a new folder is made 0700). Then
this database's old backups in that folder are pruned by the retention policy
(backup.keepLast, backup.keepDailyDays; defaults 7 and 7); other databases' backups, and
backups without a manifest, are never pruned.

An encrypted database's backup is encrypted with the same key.`,
  json: '`database`, `backup` (`path`, `takenAt`, `bytes`, `durationMs`), `pruned` (paths removed by retention).',
  exitCodes: [
    [EXIT.PROBLEM, 'the copy failed (disk full, I/O error)'],
    [EXIT.CORRUPT, 'the copy failed its check (the database itself is damaged?); it was discarded'],
    [EXIT.WRONG_KEY, 'the key does not open the database'],
    [EXIT.KEY_REQUIRED, 'the database is encrypted and no key was given'],
    [EXIT.NOT_FOUND, 'there is no file at the path'],
  ],
  async run(context) {
    const target = await context.target();
    const unlocked = await unlock(target);
    const to = context.values.to as string | undefined;
    const dir = to === undefined ? target.resolved.backup.dir : path.resolve(context.io.cwd, to);
    const total =
      (fileFacts(target.path)?.bytes ?? 0) + (fileFacts(`${target.path}-wal`)?.bytes ?? 0);
    const progress = context.progress('backup');
    // takeBackup writes `<final>.tmp-<our pid>` in the folder, then verifies and renames it.
    progress.watch(fileSizeProbe(dir, `.tmp-${process.pid}`, total), 0.99);
    let result: Awaited<ReturnType<typeof takeBackup>>;
    try {
      result = await takeBackup(target.path, unlocked.key.key, {
        dir,
        database: await backupDatabaseOf(target.path),
        keepLast: target.resolved.backup.keepLast,
        keepDailyDays: target.resolved.backup.keepDailyDays,
      });
    } catch (error) {
      progress.stop('failed');
      throw error;
    }
    progress.stop('written and verified');
    const data = {
      database: target.path,
      backup: {
        path: result.path,
        takenAt: result.takenAt.toISOString(),
        bytes: result.bytes,
        durationMs: Math.round(result.durationMs),
      },
      pruned: result.pruned,
    };
    const text =
      `${result.path}: ${formatBytes(result.bytes)}, verified, in ${formatDuration(result.durationMs)}\n` +
      (result.pruned.length > 0
        ? `pruned by retention:\n${result.pruned.map((p) => `  - ${p}`).join('\n')}\n`
        : '');
    return { exitCode: EXIT.OK, data, text };
  },
};
