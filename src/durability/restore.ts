/**
 * Restore: replacing a database with one of its backups, so that a failure or a crash at any
 * instant leaves the old database or the restored one at the path — never nothing, never a
 * mix of the two. The API's `restore()`, `walguard restore` and `onCorruption: 'restore'` all
 * run `restoreBackup`.
 *
 * The files at the path are the database `<db>`, its `-wal` (committed transactions not yet
 * checkpointed: part of the database), `-journal`, `-shm`, and `<db>.keyinfo` (the salt of a
 * passphrase database: part of it too). No rename can swap several files at once, and any mix
 * is harmful: the restored file beside the old `-wal` gets the old frames replayed onto it;
 * the old file without its `-wal` silently loses commits; either beside the other's key file
 * does not decrypt. So the swap is made atomic with an intent file, the way a journal does:
 *
 * 1. Build (nothing at the path is touched): copy the backup beside the database as
 *    `<db>.restore-<pid>.tmp` (and its key file as `….tmp.keyinfo`) with read/write, fsync,
 *    fsync the folder, then verify the copy — `quick_check` in a child process, with the key.
 *    Any failure (a full disk: `DISK_FULL`; an I/O error: `IO_ERROR`; a bad backup:
 *    `CORRUPT`) removes the temp files and changes nothing else.
 * 2. Prepare the quarantine: create `<db>.corrupted.<UTC time>/` with its record (fsynced).
 * 3. Commit point: write `<db>.restoring` — the intent: the backup, the temp files, the
 *    quarantine folder — atomically (temp, fsync, rename, folder fsync). From this instant the
 *    restore happens: whoever finds the intent finishes it (`finishInterruptedRestore`, run by
 *    every open under the process lock before anything looks at the files, and by the next
 *    restore). Finishing is always possible: the restored copy is complete and verified, and
 *    the old files are only ever renamed.
 * 4. Swap: rename the old files still at the path into the quarantine folder (`-wal`,
 *    `-journal`, `-shm`, `<db>`, `.keyinfo`), fsync both folders — a barrier, so that no crash
 *    can keep the new files and lose a move — then rename the temp key file and the temp
 *    database into place and fsync the folder.
 * 5. Record the quarantine (and any older unresolved one of this path) as resolved, give the
 *    database the backup's identity if it had none, remove the intent, fsync.
 *
 * Crash analysis (power loss, POSIX directory semantics: a rename is durable once its folder
 * is fsynced; before that, any subset of the pending renames may survive):
 * - before the intent is durable: the renames of step 4 have not started, so the old files are
 *   all at the path, unchanged. Leftovers: temp files (removed at the next open: their pid is
 *   dead) and a quarantine folder holding only its record (resolved `moved-back` then too).
 * - intent durable, swap not finished: some old files moved, some not, the temp files maybe
 *   renamed. Each file is in exactly one place (renames are atomic), the fsync barrier means a
 *   temp file renamed into place implies every old file moved, and the next open finishes:
 *   old files still at the path go to the quarantine, temp files still present go into place.
 *   Whether `<db>` at the path is old or new is told by the temp file: present means not yet
 *   renamed, so `<db>` is the old one.
 * - intent removed: done.
 * A plain SQLite (not walguard) opening the path during the swap's few milliseconds is not
 * covered; the process lock keeps walguard's own processes out.
 *
 * Failures (not crashes) during the swap roll back when they can: the old files are renamed
 * back, the intent removed; when even that fails, the intent stays and the next open rolls
 * forward. The error says where every file is.
 *
 * Which backups may be restored: a file with a backup manifest, or named like a backup
 * (legacy); never a live database (one whose process lock is held), never another database's
 * backup (`WRONG_DATABASE`, naming both; `force` overrides, for a new database that replaced
 * the one backed up). See `backups.ts` for identity.
 */
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { WalguardError } from '../errors.js';
import { parseBackupFileName } from './backup-retention.js';
import {
  type BackupManifest,
  type KeySource,
  keyFor,
  legacyBackupName,
  readManifest,
  verifyBackup,
} from './backups.js';
import { canonicalPath } from './canonical-path.js';
import { type DatabaseIdentity, readIdentity, writeIdentity } from './database-identity.js';
import {
  copyFileDurably,
  fileError,
  fsyncDirectory,
  pathExists,
  processIsAlive,
  writeFileAtomically,
} from './fs-sync.js';
import { keyFilePath } from './key-file.js';
import { acquireProcessLock, probeProcessLock } from './process-lock.js';
import {
  findUnresolvedQuarantines,
  markQuarantineResolved,
  moveIntoQuarantine,
  type PreparedQuarantine,
  prepareQuarantine,
} from './quarantine.js';

/** The result of `restoreBackup`. */
export interface RestoreResult {
  /** The backup restored. */
  restoredFrom: string;
  /** Where the files it replaced were moved, if there were any. */
  quarantineDir: string | undefined;
}

/** Options of `restoreBackup`. */
export interface RestoreOptions {
  /** The key or passphrase of an encrypted backup. */
  source?: KeySource;
  /** The caller already owns the process lock (the open sequence). */
  lockHeld?: boolean;
  /** Why, for the quarantine record. */
  reason?: string;
  /** Restore even a backup whose manifest names another database. */
  force?: boolean;
}

/**
 * What `<db>.restoring` holds while a restore swaps files. The files beside the database are
 * named relative to its folder (file names), so that the intent still holds if the folder is
 * moved or copied before the next open.
 */
interface RestoreIntent {
  format: 'walguard-restore/1';
  /** The backup being restored (for the record). */
  backup: string;
  /** The verified copy of the backup, beside the database (a file name). */
  temp: string;
  /** The copy of the backup's key file, if it has one (a file name). */
  tempKeyFile: string | null;
  /** Where the old files go, beside the database (a folder name; null when there were none). */
  quarantineDir: string | null;
  /** The identity the database gets when it has none (from the backup's manifest). */
  identity: DatabaseIdentity | null;
  /** When the swap began. */
  startedAt: string;
}

/** The suffixes of the files at the path that the swap moves, in move order ('' = `<db>`). */
const OLD_PARTS = ['-wal', '-journal', '-shm', '', '.keyinfo'] as const;

/** The intent file of a database's restore. */
export function restoreIntentPath(dbPath: string): string {
  return `${dbPath}.restoring`;
}

/**
 * Replaces the database at `dbPath` with the backup at `backupPath`; see the file header.
 * Refuses with `LOCKED` while any process has the database open, `INVALID_OPTION` for a
 * source that is not a backup, `WRONG_DATABASE` for another database's backup, `CORRUPT` for
 * a backup that fails its check, `DISK_FULL` / `IO_ERROR` when the copy cannot be made — each
 * with nothing changed.
 */
export async function restoreBackup(
  dbPath: string,
  backupPath: string,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const { db, backup, source } = await checkRestoreCandidate(dbPath, backupPath, options);
  const lock = options.lockHeld ? undefined : await acquireProcessLock(db);
  try {
    await finishInterruptedRestore(db);
    await removeRestoreLeftovers(db);
    return await restoreLocked(db, backup, source.manifest, options);
  } finally {
    await lock?.release();
  }
}

/**
 * The checks `restoreBackup` makes before anything else, for callers that ask an operator
 * first (the CLI): the source exists, is not a live database, is a backup, and (unless
 * `force`) a backup of this database. Throws `INVALID_OPTION` or `WRONG_DATABASE`.
 */
export async function checkRestoreCandidate(
  dbPath: string,
  backupPath: string,
  options: { force?: boolean } = {},
): Promise<{ db: string; backup: string; source: RestoreSource }> {
  const db = await canonicalPath(dbPath).catch((error: unknown) => {
    throw fileError(`Cannot resolve ${dbPath}`, error, { path: dbPath });
  });
  const backup = path.resolve(backupPath);
  const source = await checkRestoreSource(backup, db);
  if (!options.force) await checkBackupBelongs(db, backup, source);
  return { db, backup, source };
}

/** What a restore source turned out to be. */
export interface RestoreSource {
  /** Its manifest, when it has one. */
  manifest: BackupManifest | undefined;
  /** Its name's database part, when it is named like a backup. */
  name: string | undefined;
}

/** The usage line every refusal of a source repeats. */
const USAGE = 'Usage: walguard restore <db> <backup|latest> (API: restore({ path, backupPath }))';

/**
 * Refuses a source that is missing, a live database, or not a backup at all, with the
 * expected argument order (arguments swapped is the usual cause).
 */
async function checkRestoreSource(backup: string, db: string): Promise<RestoreSource> {
  if (!(await pathExists(backup).catch(() => false))) {
    throw new WalguardError('INVALID_OPTION', `There is no backup at ${backup}. ${USAGE}`, {
      details: { backupPath: backup },
    });
  }
  if (backup === db) {
    throw new WalguardError(
      'INVALID_OPTION',
      `${backup} is the database itself, not a backup of it; nothing was changed. ${USAGE}`,
      { details: { backupPath: backup } },
    );
  }
  const lock = await probeProcessLock(backup).catch(() => ({ held: false }) as const);
  if (lock.held) {
    throw new WalguardError(
      'INVALID_OPTION',
      `${backup} is a live database, open in ${lock.pid === undefined ? 'another process' : `process ${lock.pid}`}, not a backup; nothing was changed (are the arguments swapped?). ${USAGE}`,
      { details: { backupPath: backup, pid: lock.pid } },
    );
  }
  const manifest = await readManifest(backup);
  const parsed = parseBackupFileName(path.basename(backup));
  if (manifest === undefined && parsed === null) {
    throw new WalguardError(
      'INVALID_OPTION',
      `${backup} is not a backup: it has no backup manifest (${path.basename(backup)}.json) and its name is not a backup's (<database file>.<UTC time>.db); nothing was changed (are the arguments swapped?). ${USAGE}`,
      { details: { backupPath: backup } },
    );
  }
  return { manifest, name: manifest?.database.name ?? parsed?.name };
}

/** Refuses another database's backup with `WRONG_DATABASE`, naming both (see the header). */
async function checkBackupBelongs(db: string, backup: string, source: RestoreSource) {
  const name = path.basename(db);
  const identity = await readIdentity(db);
  const theirs = source.manifest?.database;
  let mismatch: string | undefined;
  if (theirs !== undefined) {
    if (theirs.id && identity !== undefined && theirs.id !== identity.id) {
      mismatch = `it was taken from ${theirs.path} (database ${theirs.id}), and ${db} is database ${identity.id} (since ${identity.createdAt})`;
    } else if (!(theirs.id && identity !== undefined) && theirs.name !== name) {
      mismatch = `it was taken from ${theirs.path}, a database named ${theirs.name}, not ${name}`;
    }
  } else if (source.name !== name && source.name !== legacyBackupName(name)) {
    mismatch = `its name says it is a backup of a database named ${source.name}, not ${name}`;
  }
  if (mismatch === undefined) return;
  throw new WalguardError(
    'WRONG_DATABASE',
    `The backup ${backup} is not a backup of ${db}: ${mismatch}. Nothing was changed. Restore it into its own database; if ${db} is a new database that replaced the one backed up, restore with force (walguard restore --force)`,
    {
      details: {
        backupPath: backup,
        database: db,
        backupDatabase: theirs?.path ?? source.name,
        backupDatabaseId: theirs?.id ?? null,
        databaseId: identity?.id ?? null,
      },
    },
  );
}

/** Steps 1-5 of the file header; the caller holds the lock. */
async function restoreLocked(
  db: string,
  backup: string,
  manifest: BackupManifest | undefined,
  options: RestoreOptions,
): Promise<RestoreResult> {
  const temp = `${db}.restore-${process.pid}.tmp`;
  const backupKeyFile = keyFilePath(backup);
  const tempKeyFile = (await pathExists(backupKeyFile)) ? keyFilePath(temp) : null;
  const discard = () =>
    Promise.all([temp, keyFilePath(temp)].map((f) => rm(f, { force: true }))).catch(() => {});

  // 1. Build and verify the copy; nothing at the path is touched.
  const key = await keyFor(backup, options.source);
  try {
    await copyFileDurably(backup, temp);
    if (tempKeyFile !== null) await copyFileDurably(backupKeyFile, tempKeyFile);
    await fsyncDirectory(path.dirname(db));
  } catch (error) {
    await discard();
    throw fileError(`Cannot copy the backup ${backup} beside ${db}; nothing was changed`, error, {
      backupPath: backup,
      path: db,
    });
  }
  const check = await verifyBackup(temp, key).catch((error: unknown) => {
    return { ok: false, messages: [(error as Error).message] };
  });
  if (!check.ok) {
    await discard();
    throw new WalguardError(
      'CORRUPT',
      `The backup ${backup} failed its check; nothing was changed: ${check.messages.slice(0, 3).join('; ')}`,
      { details: { backupPath: backup, messages: check.messages.slice(0, 20) } },
    );
  }

  // 2. The quarantine folder and its record.
  let prepared: PreparedQuarantine;
  try {
    prepared = await prepareQuarantine(db, {
      reason: options.reason ?? `replaced by a restore of ${backup}`,
    });
  } catch (error) {
    await discard();
    throw error;
  }
  const identity =
    (await readIdentity(db)) === undefined && manifest?.database.id
      ? { id: manifest.database.id, createdAt: new Date().toISOString() }
      : null;

  // 3. The commit point.
  const intent: RestoreIntent = {
    format: 'walguard-restore/1',
    backup,
    temp: path.basename(temp),
    tempKeyFile: tempKeyFile === null ? null : path.basename(tempKeyFile),
    quarantineDir: prepared.files.length > 0 ? path.basename(prepared.dir) : null,
    identity,
    startedAt: new Date().toISOString(),
  };
  try {
    await writeFileAtomically(restoreIntentPath(db), `${JSON.stringify(intent, null, 2)}\n`);
  } catch (error) {
    await discard();
    if (intent.quarantineDir !== null) {
      await markQuarantineResolved(prepared.dir, {
        kind: 'moved-back',
        at: new Date().toISOString(),
      }).catch(() => {});
    }
    throw fileError(`Cannot write ${restoreIntentPath(db)}; nothing was changed`, error);
  }

  // 4-5. The swap, rolled back on failure where possible.
  try {
    await swap(db, intent, prepared);
  } catch (error) {
    throw await rollBack(db, intent, error);
  }
  return { restoredFrom: backup, quarantineDir: besideDb(db, intent.quarantineDir) };
}

/** A name from an intent, as a path beside the database (undefined for null). */
function besideDb(db: string, name: string | null): string | undefined {
  return name === null ? undefined : path.join(path.dirname(db), name);
}

/** Steps 4 and 5: moves the old files away and the restored copy in, then clears the intent. */
async function swap(db: string, intent: RestoreIntent, prepared?: PreparedQuarantine) {
  const parent = path.dirname(db);
  const temp = path.join(parent, intent.temp);
  const tempKeyFile = besideDb(db, intent.tempKeyFile);
  const copyPending = await pathExists(temp);
  const keyCopyPending = tempKeyFile !== undefined && (await pathExists(tempKeyFile));
  if (copyPending) {
    // `<db>` at the path, if any, is still the old one: every old file goes to the quarantine.
    const old: string[] = [];
    for (const suffix of OLD_PARTS) {
      if (await pathExists(db + suffix)) old.push(db + suffix);
    }
    if (old.length > 0) {
      const target = prepared ?? (await quarantineFor(db, intent));
      await moveIntoQuarantine(target, old);
      await fsyncDirectory(target.dir);
      await fsyncDirectory(parent);
    }
    if (keyCopyPending) await rename(tempKeyFile!, keyFilePath(db));
    await rename(temp, db);
    await fsyncDirectory(parent);
  } else if (keyCopyPending) {
    // Cannot happen in the order above (the key file goes first); finish it all the same.
    await rename(tempKeyFile!, keyFilePath(db));
    await fsyncDirectory(parent);
  } else if (!(await pathExists(db))) {
    throw new WalguardError(
      'CORRUPT',
      `An unfinished restore of ${db} (${restoreIntentPath(db)}) cannot be finished: neither the restored copy ${temp} nor a database is there. The files it replaced are in ${besideDb(db, intent.quarantineDir) ?? '(none were)'}; restore a backup`,
      { details: { path: db, quarantineDir: besideDb(db, intent.quarantineDir) } },
    );
  }
  const at = new Date().toISOString();
  for (const { dir } of await findUnresolvedQuarantines(db)) {
    await markQuarantineResolved(dir, { kind: 'restored', restoredFrom: intent.backup, at });
  }
  if (intent.identity !== null && (await readIdentity(db)) === undefined) {
    await writeIdentity(db, intent.identity);
  }
  await rm(restoreIntentPath(db), { force: true });
  await fsyncDirectory(parent);
}

/** The quarantine folder of an intent (recreated with a record if it went missing). */
async function quarantineFor(db: string, intent: RestoreIntent): Promise<PreparedQuarantine> {
  const dir = besideDb(db, intent.quarantineDir);
  if (dir !== undefined && (await pathExists(dir))) return { db, dir, files: [] };
  const prepared = await prepareQuarantine(db, {
    reason: `replaced by a restore of ${intent.backup}`,
  });
  intent.quarantineDir = path.basename(prepared.dir);
  return prepared;
}

/**
 * After a failed swap: renames the old files back from the quarantine if the restored copy is
 * not in place yet, and clears the intent; returns the error to throw. When that fails too,
 * the intent stays, for the next open to finish the restore.
 */
async function rollBack(db: string, intent: RestoreIntent, cause: unknown): Promise<WalguardError> {
  const where = besideDb(db, intent.quarantineDir) ?? null;
  const temp = path.join(path.dirname(db), intent.temp);
  try {
    if (!(await pathExists(temp))) {
      // The restored copy is in place: forward is the only way; the next open finishes it.
      throw cause;
    }
    if (where !== null) {
      for (const name of await readdir(where)) {
        const back = path.join(path.dirname(db), name);
        if (name.startsWith(path.basename(db)) && !(await pathExists(back))) {
          await rename(path.join(where, name), back);
        }
      }
      await markQuarantineResolved(where, { kind: 'moved-back', at: new Date().toISOString() });
      await fsyncDirectory(where);
    }
    await rm(restoreIntentPath(db), { force: true });
    await Promise.all([temp, keyFilePath(temp)].map((f) => rm(f, { force: true })));
    await fsyncDirectory(path.dirname(db));
  } catch {
    return fileError(
      `The restore of ${db} from ${intent.backup} failed midway and could not be undone; the next open of the database finishes it (${restoreIntentPath(db)} says how; the old files are in ${where ?? '(none)'})`,
      cause,
      { path: db, quarantineDir: where },
    );
  }
  return fileError(
    `The restore of ${db} from ${intent.backup} failed and was undone; the database is as it was`,
    cause,
    { path: db },
  );
}

/**
 * Finishes a restore that a crash (or a failure that could not be undone) interrupted after
 * its commit point: see the file header. Call it under the process lock, before anything opens
 * the database. Resolves the restore's result, or undefined when there was none.
 */
export async function finishInterruptedRestore(dbPath: string): Promise<RestoreResult | undefined> {
  const file = restoreIntentPath(dbPath);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError(`Cannot read ${file}`, error, { path: file });
  }
  let intent: RestoreIntent;
  try {
    intent = JSON.parse(text) as RestoreIntent;
    if (intent.format !== 'walguard-restore/1' || typeof intent.temp !== 'string') throw 0;
  } catch {
    throw new WalguardError(
      'CORRUPT',
      `${file} (the record of an unfinished restore of ${dbPath}) cannot be read, so walguard cannot tell which files belong where; nothing was changed. Look at it and at ${dbPath}.corrupted.* beside it`,
      { details: { path: file } },
    );
  }
  try {
    await swap(dbPath, intent);
  } catch (error) {
    throw fileError(`Cannot finish the interrupted restore of ${dbPath} (${file})`, error, {
      path: dbPath,
      quarantineDir: besideDb(dbPath, intent.quarantineDir),
    });
  }
  return { restoredFrom: intent.backup, quarantineDir: besideDb(dbPath, intent.quarantineDir) };
}

/** Restore temp files beside the database: `<db>.restore-<pid>.tmp[.keyinfo]`. */
const RESTORE_TEMP = /^(.+)\.restore-(\d+)\.tmp(?:\.keyinfo)?$/;

/**
 * Removes the temp files of restores whose process died before their commit point (after it,
 * the intent names them and `finishInterruptedRestore` puts them in place). Call it after
 * `finishInterruptedRestore`, under the lock.
 */
export async function removeRestoreLeftovers(dbPath: string): Promise<void> {
  const dir = path.dirname(dbPath);
  const base = path.basename(dbPath);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const match = RESTORE_TEMP.exec(entry);
    if (match === null || match[1] !== base) continue;
    const pid = Number(match[2]);
    if (pid !== process.pid && processIsAlive(pid)) continue;
    await rm(path.join(dir, entry), { force: true });
  }
}

/**
 * Replaces a closed database with a backup (see `restoreBackup`): verifies it, moves the
 * current files to quarantine (never deletes them), and puts the backup in place. Refuses
 * with `LOCKED` while any process has the database open, `WRONG_DATABASE` for another
 * database's backup (unless `force`). `encryption` is needed for encrypted backups.
 */
export function restore(options: {
  path: string;
  backupPath: string;
  encryption?: { key: string } | { passphrase: string };
  force?: boolean;
}): Promise<RestoreResult> {
  return restoreBackup(options.path, options.backupPath, {
    source: options.encryption,
    force: options.force,
  });
}
