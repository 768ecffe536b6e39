/**
 * A damaged database is never deleted: it is quarantined.
 *
 * Strategy: everything that makes up the database's state is moved (renamed, never copied)
 * into a new folder beside it, `<db>.corrupted.<UTC time, e.g. 20261125T180102Z>/`, keeping
 * each file's name, so that SQLite opened on the moved `<db>` still finds its `-wal` and
 * a recovery tool sees exactly what was on disk. A `walguard-quarantine.json` in the folder
 * records the reason, the time, the original path and each file's size. After the moves the
 * folder and its parent are fsynced, so the new layout survives a power loss.
 *
 * What is moved, in this order: `<db>-wal`, `<db>-journal`, `<db>-shm`, `<db>`,
 * `<db>.keyinfo` (whichever exist). The journals go first so that no crash or failure can
 * leave a stale `-wal` or hot `-journal` beside a path where a fresh database will be
 * created: SQLite would replay it into the new file. `-journal` is not in the usual list,
 * but a hot rollback journal is part of the database's state, so it travels with it.
 *
 * Invariants:
 * - Nothing is ever deleted or overwritten: the folder is created with `mkdir` (which fails
 *   if it exists, so two calls in the same second get `…Z` and `…Z-2`), the info file with
 *   `wx`, and files are only renamed into the new, empty folder.
 * - No copies: a rename that fails (e.g. `EXDEV` across a bind mount) is not replaced by
 *   copy-and-delete. The files already moved are renamed back, and the call fails with
 *   `IO_ERROR` listing where every file is, so nothing is half-quarantined silently.
 * - `<db>.lock` and `<db>.lock.pid` are not moved: the caller holds the process lock on that
 *   inode, and a new `<db>.lock` would let a second owner in.
 *
 * The caller must own the process lock and have closed its connections: a connection left
 * open keeps reading and writing the moved inodes. The path is resolved through symlinks
 * first, as SQLite does when it names its `-wal` and `-journal`.
 */
import { lstat, mkdir, open, realpath, rename } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { WalguardError } from '../errors.js';
import { fsyncDirectory } from './fs-sync.js';

/** Options of `quarantineDatabase`. */
export interface QuarantineOptions {
  /** Why the database is quarantined, e.g. the integrity check's first lines. Recorded in
   * the folder; must not contain secrets. */
  reason: string;
  /** The time used for the folder name and the record; default: now. For tests. */
  now?: Date;
}

/** What `quarantineDatabase` did. */
export interface QuarantineResult {
  /** The quarantine folder, absolute. */
  dir: string;
  /** The new paths of the files moved into it, in the order they were moved. */
  moved: string[];
}

/** The record written into the quarantine folder. */
export interface QuarantineRecord {
  /** Why the database was quarantined. */
  reason: string;
  /** When, ISO 8601 UTC. */
  quarantinedAt: string;
  /** The database's path before the move. */
  originalPath: string;
  /** The process that moved it. */
  pid: number;
  /** Each file moved, by name, with its size in bytes. */
  files: { name: string; size: number }[];
}

/** The name of the record file inside a quarantine folder. */
export const QUARANTINE_RECORD_NAME = 'walguard-quarantine.json';

/** The sidecar suffixes moved with the database, in move order; '' is the database. */
const PARTS = ['-wal', '-journal', '-shm', '', '.keyinfo'] as const;

/**
 * Moves the database at `dbPath` and its `-wal`, `-journal`, `-shm` and `.keyinfo` files
 * (whichever exist) into a new `<db>.corrupted.<timestamp>` folder beside it, with a record
 * of `reason`. Deletes nothing. Fails with `IO_ERROR` when none of the files exists or a
 * move fails (after moving back what it moved).
 */
export async function quarantineDatabase(
  dbPath: string,
  options: QuarantineOptions,
): Promise<QuarantineResult> {
  if (typeof options?.reason !== 'string' || options.reason.trim() === '') {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected \`reason\` to be a non-empty string, got \`${String(options?.reason)}\``,
    );
  }
  const now = options.now ?? new Date();
  const db = await canonicalPath(dbPath);
  const parent = dirname(db);

  const files: { path: string; size: number }[] = [];
  for (const suffix of PARTS) {
    const path = db + suffix;
    const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw ioError(`Cannot quarantine ${db}: ${error.message}`, error, { dbPath: db });
    });
    if (stats !== undefined) files.push({ path, size: stats.size });
  }
  if (files.length === 0) {
    throw ioError(`Nothing to quarantine: no ${db} and none of its -wal/-shm/-journal/.keyinfo`);
  }

  const dir = await makeUniqueDir(`${db}.corrupted.${formatCompactUtc(now)}`);
  const record: QuarantineRecord = {
    reason: options.reason,
    quarantinedAt: now.toISOString(),
    originalPath: db,
    pid: process.pid,
    files: files.map((f) => ({ name: basename(f.path), size: f.size })),
  };
  await writeRecord(join(dir, QUARANTINE_RECORD_NAME), record);

  const moved: { from: string; to: string }[] = [];
  try {
    for (const { path } of files) {
      const to = join(dir, basename(path));
      await rename(path, to);
      moved.push({ from: path, to });
    }
  } catch (error) {
    await moveBack(db, dir, moved, error);
  }
  try {
    await fsyncDirectory(dir);
    await fsyncDirectory(parent);
  } catch (error) {
    throw ioError(
      `Quarantined ${db} into ${dir}, but could not fsync the folders: ${(error as Error).message}`,
      error,
      { dbPath: db, dir },
    );
  }
  return { dir, moved: moved.map((m) => m.to) };
}

/** Undoes the moves after a failed one, then throws an error saying where everything is. */
async function moveBack(
  db: string,
  dir: string,
  moved: { from: string; to: string }[],
  cause: unknown,
): Promise<never> {
  const stranded: string[] = [];
  for (const { from, to } of [...moved].reverse()) {
    try {
      await rename(to, from);
    } catch {
      stranded.push(`${from} is now ${to}`);
    }
  }
  await fsyncDirectory(dir).catch(() => {});
  await fsyncDirectory(dirname(db)).catch(() => {});
  const where =
    stranded.length === 0
      ? 'Every file was moved back to where it was'
      : `Could not move back: ${stranded.join('; ')}`;
  const code = (cause as NodeJS.ErrnoException).code;
  throw ioError(
    `Cannot quarantine ${db} into ${dir}: ${String((cause as Error).message)}` +
      `${code === 'EXDEV' ? ' (the folder is on another filesystem; files are never copied)' : ''}. ` +
      `${where}; nothing was deleted.`,
    cause,
    { dbPath: db, dir, stranded },
  );
}

/** Creates `base`, or `base-2`, `base-3`, … when it exists; returns the one created. */
async function makeUniqueDir(base: string): Promise<string> {
  for (let n = 1; n <= 1000; n++) {
    const dir = n === 1 ? base : `${base}-${n}`;
    try {
      await mkdir(dir, { mode: 0o700 });
      return dir;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw ioError(`Cannot create quarantine folder ${dir}: ${(error as Error).message}`, error);
    }
  }
  throw ioError(`Cannot create a quarantine folder: ${base} and 999 variants exist`);
}

/** Writes the record file (new, never replacing) and fsyncs it. */
async function writeRecord(path: string, record: QuarantineRecord): Promise<void> {
  try {
    const handle = await open(path, 'wx', 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(record, null, 2)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw ioError(`Cannot write ${path}: ${(error as Error).message}`, error, { path });
  }
}

/** The database path, through symlinks when it exists. */
async function canonicalPath(dbPath: string): Promise<string> {
  const absolute = resolve(dbPath);
  try {
    return await realpath(absolute);
  } catch {
    return absolute;
  }
}

/** `2026-11-25T18:01:02.345Z` → `20261125T180102Z`. */
function formatCompactUtc(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace(/[-:]/g, '')}Z`;
}

function ioError(
  message: string,
  cause?: unknown,
  details?: Record<string, unknown>,
): WalguardError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new WalguardError(code === 'ENOSPC' ? 'DISK_FULL' : 'IO_ERROR', message, {
    cause,
    details,
  });
}
