/**
 * `walguard restore <db> <backup|latest> [--yes]`: puts a backup in place of the database.
 *
 * Order of steps, each of which can stop the command with nothing changed: find the backup
 * (`latest`: the newest that passes its check), verify it with the secret, make sure no
 * process owns the database, show the plan and ask (unless `--yes`). Only then does the
 * library's `restoreBackup` run: it takes the lock, verifies again, moves the current files
 * to quarantine (never deleting them) and copies the backup into place.
 */
import path from 'node:path';
import { parseBackupFileName } from '../durability/backup-retention.js';
import { type BackupFile, listBackups } from '../durability/backups.js';
import { restoreBackup } from '../durability/restore.js';
import { WalguardError } from '../errors.js';
import { type BackupVerdict, verifyBackupFile } from './backup-verification.js';
import type { CommandSpec } from './command.js';
import { backupNameOf, fileFacts, probeLock } from './database-facts.js';
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
  },
  description: `Verifies the backup (it must open with the secret and pass quick_check), makes sure
no process has the database open (stop the app first), shows what will happen and asks
for confirmation (on a terminal; otherwise reads the answer from standard input, after
the passphrase line when --passphrase-stdin is used). Then moves the current database
files (<db>, -wal, -shm, .keyinfo) into <db>.corrupted.<UTC time>/ beside it — nothing
is deleted — and copies the backup and its key file into place.

Writes made after the backup was taken are not in the restored database; they stay in
the quarantined files. The database need not exist (restoring after a disk loss).`,
  json: '`database`, `restoredFrom`, `backupTakenAt`, `quarantineDir` (null when there was no database), `durationMs`.',
  exitCodes: [
    [EXIT.LOCKED, 'a process has the database open: stop it first; nothing was changed'],
    [EXIT.CORRUPT, 'the backup is damaged; nothing was changed'],
    [EXIT.WRONG_KEY, 'the secret does not open the backup'],
    [EXIT.KEY_REQUIRED, 'the backup is encrypted and no key was given, or its key file is missing'],
    [EXIT.NOT_ENCRYPTED, 'a key was given for a plaintext backup'],
    [EXIT.NOT_FOUND, 'the backup does not exist (or, for `latest`, there is none)'],
    [EXIT.ABORTED, 'the confirmation was declined; nothing was changed'],
  ],
  async run(context) {
    const target = await context.target();
    const dbPath = target.path;
    const encryption = target.resolved.encryption;
    const choice = context.args.backup!;
    let backup: BackupFile;
    if (choice === 'latest') {
      const dirValue = context.values.dir as string | undefined;
      const dir =
        dirValue === undefined
          ? target.resolved.backup.dir
          : path.resolve(context.io.cwd, dirValue);
      backup = await newestGood(
        dir,
        backupNameOf(dbPath),
        encryption,
        context.progress('verifying backups'),
      );
    } else {
      const file = path.resolve(context.io.cwd, choice);
      const facts = fileFacts(file);
      if (facts === null)
        throw new CliError('NOT_FOUND', `There is no backup at ${file}`, { path: file });
      const verdict = await verifyBackupFile(file, encryption);
      if (!verdict.ok) throw verdict.error;
      const parsed = parseBackupFileName(path.basename(file));
      backup = {
        path: file,
        takenAt: parsed?.takenAt ?? new Date(facts.modifiedAt),
        bytes: facts.bytes,
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

/** The newest backup that passes its check; otherwise the newest one's error. */
async function newestGood(
  dir: string,
  name: string,
  encryption: Parameters<typeof verifyBackupFile>[1],
  progress: { phase(label: string): void; stop(note?: string): void },
): Promise<BackupFile> {
  const backups = await listBackups(dir, name);
  if (backups.length === 0) {
    throw new CliError('NOT_FOUND', `There is no backup of ${name} in ${dir}`, { dir });
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
  const message = `No backup in ${dir} passes its check; the newest: ${reason?.message}`;
  if (reason instanceof WalguardError) throw new WalguardError(reason.code, message);
  throw new CliError('NOT_FOUND', message);
}
