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
 * first (`canonical-path.ts`), as SQLite does when it names its `-wal` and `-journal`.
 *
 * Resolution. A quarantine leaves no database at its path until something is put back. The
 * record says when that happened (`resolution`: a restore put a backup in place, or a failed
 * quarantine moved everything back). An open that finds no database (or a 0-byte one) where
 * an unresolved quarantine of the same path exists refuses (`findUnresolvedQuarantines`):
 * creating an empty database there would hide where the data went — exactly what today's
 * failed restores did. Records written before `resolution` existed count as unresolved.
 *
 * The restore (`restore.ts`) uses the two halves separately: `prepareQuarantine` (list the
 * files, make the folder, write the record) before its point of no return, and
 * `moveIntoQuarantine` inside its swap.
 */
import { lstat, mkdir, open, readdir, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WalguardError } from '../errors.js';
import { canonicalPath } from './canonical-path.js';
import { fileErrorCode, fsyncDirectory, writeFileAtomically } from './fs-sync.js';

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
  /** What put a database back at `originalPath`, once something did; absent until then. */
  resolution?: QuarantineResolution;
}

/** How a quarantine was resolved. */
export type QuarantineResolution =
  /** A restore put a backup in place of the quarantined files. */
  | { kind: 'restored'; restoredFrom: string; at: string }
  /** The quarantine failed and every file was moved back. */
  | { kind: 'moved-back'; at: string }
  /** What was quarantined held nothing acknowledged (a torn first page); a new database
   * took its place. */
  | { kind: 'replaced-by-new'; at: string };

/** A quarantine folder that is prepared and recorded, its files not moved yet. */
export interface PreparedQuarantine {
  /** The database, canonical. */
  db: string;
  /** The folder, created, holding only the record. */
  dir: string;
  /** The files to move (whichever existed), in move order. */
  files: string[];
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
  const prepared = await prepareQuarantine(dbPath, options);
  if (prepared.files.length === 0) {
    throw ioError(
      `Nothing to quarantine: no ${prepared.db} and none of its -wal/-shm/-journal/.keyinfo`,
    );
  }
  const moved = await moveIntoQuarantine(prepared, prepared.files);
  try {
    await fsyncDirectory(prepared.dir);
    await fsyncDirectory(dirname(prepared.db));
  } catch (error) {
    throw ioError(
      `Quarantined ${prepared.db} into ${prepared.dir}, but could not fsync the folders: ${(error as Error).message}`,
      error,
      { dbPath: prepared.db, dir: prepared.dir },
    );
  }
  return { dir: prepared.dir, moved };
}

/**
 * Lists the files of `dbPath` that exist (in move order), creates the quarantine folder and
 * writes its record (fsynced), and returns them; moves nothing. Throws when nothing exists
 * only if `requireFiles`; otherwise returns `files: []` without creating anything.
 */
export async function prepareQuarantine(
  dbPath: string,
  options: QuarantineOptions,
): Promise<PreparedQuarantine> {
  if (typeof options?.reason !== 'string' || options.reason.trim() === '') {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected \`reason\` to be a non-empty string, got \`${String(options?.reason)}\``,
    );
  }
  const now = options.now ?? new Date();
  const db = await canonicalOf(dbPath);
  const files: { path: string; size: number }[] = [];
  for (const suffix of PARTS) {
    const path = db + suffix;
    const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw ioError(`Cannot quarantine ${db}: ${error.message}`, error, { dbPath: db });
    });
    if (stats !== undefined) files.push({ path, size: stats.size });
  }
  if (files.length === 0) return { db, dir: '', files: [] };
  const dir = await makeUniqueDir(`${db}.corrupted.${formatCompactUtc(now)}`);
  const record: QuarantineRecord = {
    reason: options.reason,
    quarantinedAt: now.toISOString(),
    originalPath: db,
    pid: process.pid,
    files: files.map((f) => ({ name: basename(f.path), size: f.size })),
  };
  await writeRecord(join(dir, QUARANTINE_RECORD_NAME), record);
  // The record's name in the folder, and the folder's in the parent, survive a power loss.
  await fsyncDirectory(dir).catch((error: unknown) => {
    throw ioError(`Cannot fsync ${dir}: ${(error as Error).message}`, error, { dir });
  });
  await fsyncDirectory(dirname(db)).catch((error: unknown) => {
    throw ioError(`Cannot fsync ${dirname(db)}: ${(error as Error).message}`, error, { dir });
  });
  return { db, dir, files: files.map((f) => f.path) };
}

/**
 * Renames each of `files` (paths beside `prepared.db`) into the quarantine folder, keeping its
 * name, in order. A sidecar (`-wal`, `-shm`, `-journal`) that vanished since it was listed is
 * skipped: only SQLite removes those, when the last connection to the database closes, after
 * checkpointing the WAL into the database file (a connection of this process closing late,
 * e.g. a worker thread's). A failed rename moves back what this call moved, marks the record
 * `moved-back` and throws `IO_ERROR` saying where everything is. Does not fsync.
 */
export async function moveIntoQuarantine(
  prepared: PreparedQuarantine,
  files: readonly string[],
): Promise<string[]> {
  const moved: { from: string; to: string }[] = [];
  try {
    for (const path of files) {
      const to = join(prepared.dir, basename(path));
      try {
        await rename(path, to);
      } catch (error) {
        const sidecar = /-(wal|shm|journal)$/.test(path);
        if (sidecar && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      moved.push({ from: path, to });
    }
  } catch (error) {
    await moveBack(prepared.db, prepared.dir, moved, error);
  }
  return moved.map((m) => m.to);
}

/** Records in the quarantine folder `dir` how it was resolved (atomically). */
export async function markQuarantineResolved(
  dir: string,
  resolution: QuarantineResolution,
): Promise<void> {
  const file = join(dir, QUARANTINE_RECORD_NAME);
  try {
    let record: QuarantineRecord;
    try {
      record = JSON.parse(await readFile(file, 'utf8')) as QuarantineRecord;
    } catch {
      // Lost or unreadable (e.g. a crash before it reached the disk): write what is known.
      const name = basename(dir).replace(/\.corrupted\..*$/, '');
      record = {
        reason: 'unknown (the record was lost)',
        quarantinedAt: '',
        originalPath: join(dirname(dir), name),
        pid: process.pid,
        files: [],
      };
    }
    record.resolution = resolution;
    await writeFileAtomically(file, `${JSON.stringify(record, null, 2)}\n`);
  } catch (error) {
    throw ioError(
      `Cannot update the quarantine record ${file}: ${(error as Error).message}`,
      error,
      { dir },
    );
  }
}

/** An unresolved quarantine of a database. */
export interface UnresolvedQuarantine {
  /** The folder. */
  dir: string;
  /** Its record. */
  record: QuarantineRecord;
}

/**
 * The quarantine folders beside `dbPath` whose record names it (by canonical path, or by
 * file name when the folder was moved with it) and says nothing put a database back, oldest
 * first. A folder whose record cannot be read counts, with a record made from its name.
 */
export async function findUnresolvedQuarantines(dbPath: string): Promise<UnresolvedQuarantine[]> {
  const db = await canonicalOf(dbPath);
  const prefix = `${basename(db)}.corrupted.`;
  let entries: string[];
  try {
    entries = await readdir(dirname(db));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(`Cannot list ${dirname(db)}: ${(error as Error).message}`, error);
  }
  const found: UnresolvedQuarantine[] = [];
  for (const name of entries.filter((n) => n.startsWith(prefix)).sort()) {
    const dir = join(dirname(db), name);
    let record: QuarantineRecord;
    try {
      record = JSON.parse(
        await readFile(join(dir, QUARANTINE_RECORD_NAME), 'utf8'),
      ) as QuarantineRecord;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') continue;
      record = {
        reason: 'unknown (no readable record)',
        quarantinedAt: '',
        originalPath: db,
        pid: 0,
        files: [],
      };
    }
    const sameDatabase =
      record.originalPath === db || basename(String(record.originalPath)) === basename(db);
    if (sameDatabase && record.resolution === undefined) found.push({ dir, record });
  }
  return found;
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
  if (stranded.length === 0) {
    await markQuarantineResolved(dir, { kind: 'moved-back', at: new Date().toISOString() }).catch(
      () => {},
    );
  }
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

/** The database path, through every symlink (see `canonical-path.ts`). */
async function canonicalOf(dbPath: string): Promise<string> {
  try {
    return await canonicalPath(dbPath);
  } catch (error) {
    throw ioError(`Cannot resolve ${dbPath}: ${(error as Error).message}`, error, { dbPath });
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
  return new WalguardError(fileErrorCode(cause), message, { cause, details });
}
