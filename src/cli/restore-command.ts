/**
 * `walguard restore <db> <backup|latest> [--yes]`: puts a backup in place of the database.
 *
 * Order of steps, each of which can stop the command with nothing changed and nothing
 * created: check the source (it must be a backup — a manifest beside it, or a backup's name —
 * not a live database, and a backup of this database: arguments given in the wrong order are
 * caught here, with the expected order in the message), find the backup (`latest`: the newest
 * of this database that passes its check), verify it with the secret, make sure no process
 * owns the database, show the plan and ask (unless `--yes`). Only then does the library's
 * `restoreBackup` run: it takes the lock, builds and verifies the restored copy beside the
 * database, and swaps it in atomically, moving the current files to quarantine (never
 * deleting them); see src/durability/restore.ts.
 */
import path from 'node:path';
import { parseBackupFileName } from '../durability/backup-retention.js';
import {
  type BackupFile,
  backupDatabaseOf,
  listBackups,
  readManifest,
} from '../durability/backups.js';
import { checkRestoreCandidate, restoreBackup } from '../durability/restore.js';
import { WalguardError } from '../errors.js';
import { type BackupVerdict, verifyBackupFile } from './backup-verification.js';
import type { CommandSpec } from './command.js';
import { fileFacts, probeLock } from './database-facts.js';
import { CliError, EXIT } from './exit-codes.js';
import { formatAge, formatBytes, formatDuration } from './format.js';
import { fileSizeProbe } from './progress.js';

export const restoreCommand: CommandSpec = {
  name: 'restore',
  summary: 'Replace a database with a backup (asks first unless --yes)',
  args: [
    { name: 'db', required: false, help: 'the database file (default: `path` of --config)' },
    {
      name: 'backup',
      required: true,
      help: 'a backup file, or `latest` for the newest backup that passes its check',
    },
  ],
  options: {
    yes: { type: 'boolean', short: 'y', help: 'do not ask for confirmation' },
    dir: {
      type: 'string',
      valueName: 'DIR',
      help: 'where to look for `latest` (default: backup.dir of the config, or backups/ beside the database)',
    },
    force: {
      type: 'boolean',
      help: 'restore a backup whose manifest names another database (when <db> is a new database that replaced the one backed up)',
    },
  },
  description: `Checks the backup first: it must be a backup (a manifest <backup>.json beside it, or
a backup's name), not a live database, and a backup of <db> (its manifest names this
database; --force overrides, for a new database that replaced the one backed up).
Then verifies it (it must open with the secret and pass quick_check), makes sure no
process has the database open (stop the app first), shows what will happen and asks
for confirmation (on a terminal; otherwise reads the answer from standard input, after
the passphrase line when --passphrase-stdin is used).

Then copies the backup beside the database under a temp name, fsyncs and verifies the
copy, and swaps it in: the current database files (<db>, -wal, -shm, .keyinfo) move
into <db>.corrupted.<UTC time>/ beside it — nothing is deleted — and the copy (with its
key file) takes their place. A failure at any step (a full disk, an I/O error) leaves
the current files exactly where they were; a crash after the swap began is finished by
the next open. \`latest\` considers only backups with a manifest naming this database.

Writes made after the backup was taken are not in the restored database; they stay in
the quarantined files. The database need not exist (restoring after a disk loss).`,
  json: '`database`, `restoredFrom`, `backupTakenAt`, `quarantineDir` (null when there was no database), `durationMs`.',
  exitCodes: [
    [
      EXIT.USAGE,
      'the source is not a backup (or is a live database: arguments swapped?); nothing was changed',
    ],
    [EXIT.LOCKED, 'a process has the database open: stop it first; nothing was changed'],
    [EXIT.CORRUPT, 'the backup is damaged; nothing was changed'],
    [EXIT.WRONG_KEY, 'the secret does not open the backup'],
    [EXIT.KEY_REQUIRED, 'the backup is encrypted and no key was given, or its key file is missing'],
    [EXIT.NOT_ENCRYPTED, 'a key was given for a plaintext backup'],
    [EXIT.NOT_FOUND, 'the backup does not exist (or, for `latest`, there is none)'],
    [EXIT.ABORTED, 'the confirmation was declined; nothing was changed'],
    [
      EXIT.WRONG_DATABASE,
      'the backup is of another database (its manifest says which); nothing was changed',
    ],
    [EXIT.PROBLEM, 'the disk is full or an I/O error stopped the copy; nothing was changed'],
  ],
  async run(context) {
    const target = await context.target();
    const dbPath = target.path;
    const encryption = target.resolved.encryption;
    const choice = context.args.backup!;
    const force = context.values.force === true;
    let backup: BackupFile;
    if (choice === 'latest') {
      const dirValue = context.values.dir as string | undefined;
      const dir =
        dirValue === undefined
          ? target.resolved.backup.dir
          : path.resolve(context.io.cwd, dirValue);
      backup = await newestGood(
        dir,
        await backupDatabaseOf(dbPath),
        encryption,
        context.progress('verifying backups'),
      );
    } else {
      const file = path.resolve(context.io.cwd, choice);
      const facts = fileFacts(file);
      if (facts === null)
        throw new CliError('NOT_FOUND', `There is no backup at ${file}`, { path: file });
      await checkRestoreCandidate(dbPath, file, { force });
      const verdict = await verifyBackupFile(file, encryption);
      if (!verdict.ok) throw verdict.error;
      const parsed = parseBackupFileName(path.basename(file));
      const manifest = await readManifest(file);
      backup = {
        path: file,
        takenAt: manifest
          ? new Date(manifest.takenAt)
          : (parsed?.takenAt ?? new Date(facts.modifiedAt)),
        bytes: facts.bytes,
        legacy: manifest === undefined,
        manifest,
        prunable: false,
      };
    }
    const lock = await probeLock(dbPath);
    if (lock.held === true) {
      throw new WalguardError(
        'LOCKED',
        `Database ${dbPath} is open in ${lock.pid === undefined ? 'another process' : `process ${lock.pid}`}: stop the app before restoring. Nothing was changed`,
        { details: { pid: lock.pid } },
      );
    }
    const current = fileFacts(dbPath);
    const age = formatAge((Date.now() - backup.takenAt.getTime()) / 1000);
    const plan =
      `Restore ${dbPath}\n  from ${backup.path}\n  taken ${backup.takenAt.toISOString()} (${age}), ${formatBytes(backup.bytes)}, verified.\n` +
      (current === null
        ? '  There is no database there now.\n'
        : `  The current files (${formatBytes(current.bytes)}, last written ${current.modifiedAt}) will be moved to ${path.basename(dbPath)}.corrupted.<time>/ beside it; nothing is deleted.\n  Writes made after ${backup.takenAt.toISOString()} will not be in the restored database.\n`);
    if (context.values.yes !== true) {
      context.io.stderr.write(plan);
      const answer = await context.io.stdin.readLine('Restore? [y/N] ');
      if (answer === undefined || !/^\s*y(es)?\s*$/i.test(answer)) {
        throw new CliError(
          'ABORTED',
          `Not restored (${answer === undefined ? 'no answer' : `answer \`${answer.trim().slice(0, 20)}\``}); nothing was changed. Pass --yes to restore without asking`,
        );
      }
    }
    const started = Date.now();
    const progress = context.progress('restore');
    progress.watch(fileSizeProbe(path.dirname(dbPath), `.restore-${process.pid}`, backup.bytes));
    let result: Awaited<ReturnType<typeof restoreBackup>>;
    try {
      result = await restoreBackup(dbPath, backup.path, {
        source: encryption,
        reason: `walguard restore from ${backup.path}`,
        force,
      });
    } catch (error) {
      progress.stop('failed');
      throw error;
    }
    progress.stop('restored');
    const durationMs = Date.now() - started;
    const data = {
      database: dbPath,
      restoredFrom: result.restoredFrom,
      backupTakenAt: backup.takenAt.toISOString(),
      quarantineDir: result.quarantineDir ?? null,
      durationMs,
    };
    const text =
      `Restored ${dbPath} from ${result.restoredFrom} (taken ${backup.takenAt.toISOString()}) in ${formatDuration(durationMs)}\n` +
      (result.quarantineDir === undefined
        ? ''
        : `The previous files are in ${result.quarantineDir}\n`);
    return { exitCode: EXIT.OK, data, text };
  },
};

/** The newest backup of `database` that passes its check; otherwise the newest one's error. */
async function newestGood(
  dir: string,
  database: Parameters<typeof listBackups>[1],
  encryption: Parameters<typeof verifyBackupFile>[1],
  progress: { phase(label: string): void; stop(note?: string): void },
): Promise<BackupFile> {
  const all = await listBackups(dir, database);
  const backups = all.filter((b) => !b.legacy);
  const legacy = all.length - backups.length;
  const legacyNote =
    legacy === 0
      ? ''
      : `; ${legacy} backup(s) without a manifest (written before backups named their database) are not considered by \`latest\`: name one to restore it`;
  if (backups.length === 0) {
    throw new CliError(
      'NOT_FOUND',
      `There is no backup of ${database.name} in ${dir}${legacyNote}`,
      {
        dir,
      },
    );
  }
  const cache = new Map<string, Promise<string>>();
  let first: BackupVerdict | undefined;
  for (const [i, backup] of backups.entries()) {
    progress.phase(`verifying backup ${i + 1} of ${backups.length}`);
    const verdict = await verifyBackupFile(backup.path, encryption, cache);
    if (verdict.ok) {
      progress.stop(`using ${path.basename(backup.path)}`);
      return backup;
    }
    first ??= verdict;
  }
  progress.stop('none usable');
  const reason = first?.error;
  const message = `No backup of ${database.name} in ${dir} passes its check; the newest: ${reason?.message}${legacyNote}`;
  if (reason instanceof WalguardError) throw new WalguardError(reason.code, message);
  throw new CliError('NOT_FOUND', message);
}
