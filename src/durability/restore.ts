/**
 * Restore: replacing a database with one of its backups.
 *
 * Invariants:
 * - Restore never runs against an open database: it takes the process lock (the open
 *   sequence, which restores while it holds the lock, says so with `lockHeld`).
 * - The backup is verified before anything is touched; the current files are moved to
 *   quarantine, never overwritten or deleted.
 */
import { copyFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { WalguardError } from '../errors.js';
import { exists, type KeySource, keyFor, verifyBackup } from './backups.js';
import { fsyncDirectory, fsyncFile } from './fs-sync.js';
import { keyFilePath } from './key-file.js';
import { acquireProcessLock } from './process-lock.js';
import { quarantineDatabase } from './quarantine.js';

/** The result of `restoreBackup`. */
export interface RestoreResult {
  /** The backup restored. */
  restoredFrom: string;
  /** Where the files it replaced were moved, if there were any. */
  quarantineDir: string | undefined;
}

/**
 * Replaces the database at `dbPath` with the backup at `backupPath`. Refuses (`LOCKED`) while
 * any process has the database open; refuses (`CORRUPT`) a backup that fails its check; moves
 * the current files to quarantine first. `lockHeld` is for the open sequence, which restores
 * while it already holds the lock.
 */
export async function restoreBackup(
  dbPath: string,
  backupPath: string,
  options: { source?: KeySource; lockHeld?: boolean; reason?: string } = {},
): Promise<RestoreResult> {
  const lock = options.lockHeld ? undefined : await acquireProcessLock(dbPath);
  try {
    const key = await keyFor(backupPath, options.source);
    const check = await verifyBackup(backupPath, key);
    if (!check.ok) {
      throw new WalguardError(
        'CORRUPT',
        `The backup ${backupPath} failed its check; nothing was changed: ${check.messages.slice(0, 3).join('; ')}`,
      );
    }
    let quarantineDir: string | undefined;
    // A leftover -wal (or -journal) beside a missing database must go too: SQLite would replay
    // its frames onto the restored file.
    const present = await Promise.all(
      ['', '-wal', '-journal', '-shm', '.keyinfo'].map((suffix) => exists(dbPath + suffix)),
    );
    if (present.some(Boolean)) {
      const moved = await quarantineDatabase(dbPath, {
        reason: options.reason ?? `replaced by a restore of ${backupPath}`,
      });
      quarantineDir = moved.dir;
    }
    const temp = `${dbPath}.restore-${process.pid}`;
    await copyFile(backupPath, temp);
    await fsyncFile(temp);
    if (await exists(keyFilePath(backupPath))) {
      await copyFile(keyFilePath(backupPath), keyFilePath(dbPath));
      await fsyncFile(keyFilePath(dbPath));
    }
    await rename(temp, dbPath);
    await fsyncDirectory(path.dirname(dbPath));
    return { restoredFrom: backupPath, quarantineDir };
  } finally {
    await lock?.release();
  }
}

/**
 * Replaces a closed database with a backup: verifies the backup, moves the current files to
 * quarantine (never deletes them), and copies the backup into place. Refuses with `LOCKED`
 * while any process has the database open. `encryption` is needed for encrypted backups.
 */
export function restore(options: {
  path: string;
  backupPath: string;
  encryption?: { key: string } | { passphrase: string };
}): Promise<RestoreResult> {
  return restoreBackup(path.resolve(options.path), path.resolve(options.backupPath), {
    source: options.encryption,
  });
}
