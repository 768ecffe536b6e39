/**
 * `walguard backups <db> [--verify]`: the backups of a database, newest first, with their
 * age; `--verify` opens each with the secret and runs `quick_check` on it.
 *
 * The database itself need not exist: after a disaster this is how to find what to restore.
 */
import path from 'node:path';
import { backupDatabaseOf, listBackups } from '../durability/backups.js';
import { keyFilePath } from '../durability/key-file.js';
import { type BackupVerdict, verifyBackupFile } from './backup-verification.js';
import type { CommandSpec } from './command.js';
import { fileFacts } from './database-facts.js';
import { EXIT, errorCodeOf } from './exit-codes.js';
import { formatAge, formatBytes } from './format.js';

export const backupsCommand: CommandSpec = {
  name: 'backups',
  summary: 'List the backups of a database; --verify checks each one',
  args: [{ name: 'db', required: false, help: 'the database file (default: `path` of --config)' }],
  options: {
    dir: {
      type: 'string',
      valueName: 'DIR',
      help: 'backup folder (default: backup.dir of the config, or backups/ beside the database)',
    },
    verify: {
      type: 'boolean',
      help: 'open each backup with the key and run quick_check on it',
    },
  },
  description: `Lists the backups of the database in the backup folder, newest first, with size,
age and whether a key file is beside it: files named <database file name>.<UTC
timestamp>.db whose manifest (<backup>.json) names this database, and, marked "legacy",
backups written before backups had a manifest (named <file name without extension>.<UTC
timestamp>.db): their database cannot be told, so they are listed for every database
whose name fits, never pruned, and never used by \`restore latest\`. The database itself
need not exist.

With --verify each backup is opened (with the database's passphrase or key: a
passphrase backup is unlocked with its own key file) and checked with quick_check.`,
  json: '`database`, `dir`, `backups` (each `path`, `takenAt`, `ageSeconds`, `bytes`, `keyFile`, `legacy`, and with --verify `verified` and `error`), `failed` (count).',
  exitCodes: [[EXIT.PROBLEM, 'there is no backup, or (with --verify) a backup failed its check']],
  async run(context) {
    const target = await context.target();
    const dirValue = context.values.dir as string | undefined;
    const dir =
      dirValue === undefined ? target.resolved.backup.dir : path.resolve(context.io.cwd, dirValue);
    const backups = await listBackups(dir, await backupDatabaseOf(target.path));
    const verify = context.values.verify === true;
    const now = Date.now();
    const cache = new Map<string, Promise<string>>();
    const rows: Record<string, unknown>[] = [];
    const lines: string[] = [];
    let failed = 0;
    const progress = context.progress('verifying backups');
    for (const [i, backup] of backups.entries()) {
      let verdict: BackupVerdict | undefined;
      if (verify) {
        progress.phase(`verifying backup ${i + 1} of ${backups.length}`);
        verdict = await verifyBackupFile(backup.path, target.resolved.encryption, cache);
        if (!verdict.ok) failed++;
      }
      const ageSeconds = Math.round((now - backup.takenAt.getTime()) / 1000);
      const keyFile = fileFacts(keyFilePath(backup.path)) !== null;
      rows.push({
        path: backup.path,
        takenAt: backup.takenAt.toISOString(),
        ageSeconds,
        bytes: backup.bytes,
        keyFile,
        legacy: backup.legacy,
        ...(verdict === undefined
          ? {}
          : {
              verified: verdict.ok,
              error:
                verdict.error === undefined
                  ? null
                  : { code: errorCodeOf(verdict.error), message: verdict.error.message },
            }),
      });
      const state =
        verdict === undefined
          ? ''
          : verdict.ok
            ? '  verified'
            : `  FAILED ${errorCodeOf(verdict.error)}: ${verdict.error?.message}`;
      lines.push(
        `  ${path.basename(backup.path)}  ${formatBytes(backup.bytes)}  ${formatAge(ageSeconds)}${keyFile ? '  +key file' : ''}${backup.legacy ? '  legacy (no manifest)' : ''}${state}`,
      );
    }
    if (verify) progress.stop(failed === 0 ? 'all verified' : `${failed} failed`);
    const data: Record<string, unknown> = {
      database: target.path,
      dir,
      backups: rows,
      failed,
    };
    let exitCode: number = EXIT.OK;
    if (backups.length === 0) {
      exitCode = EXIT.PROBLEM;
      data.error = { code: 'PROBLEM', message: `No backup of ${target.path} in ${dir}` };
    } else if (failed > 0) {
      exitCode = EXIT.PROBLEM;
      data.error = {
        code: 'PROBLEM',
        message: `${failed} of ${backups.length} backups failed verification`,
      };
    }
    const text =
      backups.length === 0
        ? `No backup of ${target.path} in ${dir}\n`
        : `${backups.length} backup${backups.length === 1 ? '' : 's'} of ${target.path} in ${dir}, newest first:\n${lines.join('\n')}\n`;
    return { exitCode, data, text };
  },
};
