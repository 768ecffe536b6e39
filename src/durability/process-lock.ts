/**
 * One process owns a database for writing: the process lock.
 *
 * Strategy: the owner holds SQLite's own EXCLUSIVE lock on a sidecar file, `<db>.lock`,
 * through a private `libsql` connection kept open for the owner's lifetime (an open
 * `BEGIN EXCLUSIVE` transaction that never commits). SQLite's unix VFS takes that lock with
 * `fcntl` byte-range locks, which the kernel drops when the last descriptor of the owning
 * process closes, so the lock vanishes when the owner dies, even by `kill -9` or power
 * loss: there is no stale-lock cleanup, no timeout and no guessing from pids. A contender
 * runs the same `BEGIN EXCLUSIVE` with a busy timeout of 0 and gets `SQLITE_BUSY` at once.
 *
 * Both files are created with mode 0600 (the lock file by walguard before SQLite opens it,
 * only when it does not exist yet: a file that exists may be open in this process, see below).
 * A contender that only probes (`probeProcessLock`, for the CLI's read-only commands) creates
 * nothing: no lock file means no owner.
 *
 * The owner's pid is written to `<db>.lock.pid` (plain text, one line) after the lock is
 * taken, so that a contender's `LOCKED` error can name it; the pid is information, never the
 * lock. It is removed by `release()` while the lock is still held (so it can never remove a
 * successor's file), and left behind by a crash, to be overwritten by the next owner.
 *
 * Invariants:
 * - Nothing in this process may open `<db>.lock` except through SQLite. POSIX `fcntl` locks
 *   belong to the (process, inode) pair: closing *any* descriptor of that file in the owning
 *   process silently drops every lock the process holds on it. Measured here: one
 *   `fs.readFileSync('<db>.lock')` in the owner let another process take the lock. SQLite
 *   guards against this among its own connections (its inode table defers the close of a
 *   descriptor while locks are held), which is also why contenders inside the owning
 *   process (a second connection, a worker thread) see `SQLITE_BUSY`: verified with both.
 *   For the same reason the pid lives in a second file instead of in the lock file.
 * - The lock file is never written: it stays a 0-byte file (the journal is in memory and
 *   the transaction never modifies a page), so there is nothing in it to corrupt or recover.
 * - The lock connection only ever uses `exec()`. libsql 0.5.29's `close()` keeps a connection
 *   (and its locks) alive until GC once it has prepared a statement (libsql-js #228/#230);
 *   a connection that only used `exec()` closes deterministically, measured here. The
 *   owner's connection is still kept open until `release()`: closing it is the release.
 * - Inside one thread a registry keyed by the canonical database path answers a double
 *   acquire before SQLite is asked; it is a convenience for a clear message, not the lock
 *   (each worker thread has its own registry; SQLite covers threads).
 *
 * Not guaranteed:
 * - Network filesystems (NFS, SMB) where `fcntl` locks are unreliable or absent; SQLite's
 *   own documentation says the same of its databases there.
 * - Two names for one file through hard links: the lock is named after the database's
 *   canonical path (`canonical-path.ts`: every symlink resolved, a dangling one included, as
 *   SQLite resolves it), so a symlink cannot take a second lock, but a hard link gets a
 *   different `<db>.lock`.
 * - A cooperative lock only: a program that opens the database without walguard is not
 *   stopped by it.
 * - The pid in the error may be stale for an instant: a contender that meets the lock just
 *   as a new owner takes it can read the previous owner's pid file. A pid that names no live
 *   process is therefore re-read (and the lock retried) for a short while before it is
 *   reported as unknown.
 *
 * Tried and not used: `locking_mode=EXCLUSIVE` plus a write (the lock then survives COMMIT)
 * works too, but writes a page and a `-journal` to the lock file; storing the pid in the lock
 * file's header (`user_version`) would make contenders read the lock file, which breaks the
 * first invariant for contenders inside the owning process.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import Database from 'libsql';
import { WalguardError } from '../errors.js';
import { canonicalPath } from './canonical-path.js';
import { createPrivateFile, fileError, pathExists, processIsAlive } from './fs-sync.js';

/** A held process lock on one database. */
export interface ProcessLock {
  /** The database path the lock guards, canonical (symlinks resolved). */
  readonly dbPath: string;
  /** The sidecar file whose SQLite lock is held: `<dbPath>.lock`. */
  readonly lockPath: string;
  /** The file naming the owner's pid: `<dbPath>.lock.pid`. */
  readonly pidPath: string;
  /** The owner's pid (this process). */
  readonly pid: number;
  /** True once `release()` has run. */
  readonly released: boolean;
  /** Removes the pid file and drops the lock; safe to call more than once. */
  release(): Promise<void>;
}

/** Options of `acquireProcessLock`. */
export interface AcquireProcessLockOptions {
  /**
   * How long to keep retrying while another owner holds the lock, in ms (e.g. while the
   * previous instance of an app finishes its graceful shutdown). Minimum 0; default 0: fail
   * at once.
   */
  waitMs?: number;
}

/** The subset of a `libsql` connection the lock uses: `exec()` only (see the header). */
interface LockConnection {
  /** Runs SQL without results. */
  exec(sql: string): unknown;
  /** Closes the connection, dropping its locks. */
  close(): unknown;
}

/** The pause between two attempts while waiting for an owner, in ms. */
const RETRY_INTERVAL_MS = 25;
/** How long a contender waits for a pid file that names a live owner, in ms. */
const PID_SETTLE_MS = 250;

/** Locks held by this thread, by canonical database path. Guards double acquire only. */
const heldLocks = new Map<string, OwnedLock>();

class OwnedLock implements ProcessLock {
  readonly dbPath: string;
  readonly lockPath: string;
  readonly pidPath: string;
  readonly pid = process.pid;
  /** The connection holding `BEGIN EXCLUSIVE`; undefined once released. */
  #connection: LockConnection | undefined;
  /** The pending release, so concurrent calls share it. */
  #releasing: Promise<void> | undefined;

  constructor(dbPath: string, connection: LockConnection) {
    this.dbPath = dbPath;
    this.lockPath = `${dbPath}.lock`;
    this.pidPath = `${dbPath}.lock.pid`;
    this.#connection = connection;
  }

  get released(): boolean {
    return this.#connection === undefined;
  }

  release(): Promise<void> {
    this.#releasing ??= this.#release();
    return this.#releasing;
  }

  async #release(): Promise<void> {
    // The pid file goes first, while the lock is still held: once the lock is dropped a
    // successor may write its own pid file, which must never be removed by us.
    try {
      const text = await readFile(this.pidPath, 'utf8');
      if (parsePid(text) === this.pid) await rm(this.pidPath, { force: true });
    } catch {
      // Missing or unreadable: nothing of ours to remove; the lock is what matters.
    }
    const connection = this.#connection;
    this.#connection = undefined;
    heldLocks.delete(this.dbPath);
    if (connection === undefined) return;
    try {
      connection.exec('ROLLBACK');
    } finally {
      connection.close();
    }
  }
}

/**
 * Makes this process the only owner of `dbPath` for writing, or fails with
 * `WalguardError('LOCKED')` naming the owner's pid (`details.pid`, `undefined` when it could
 * not be learned). The database file itself need not exist yet; its directory must.
 */
export async function acquireProcessLock(
  dbPath: string,
  options: AcquireProcessLockOptions = {},
): Promise<ProcessLock> {
  if (typeof dbPath !== 'string' || dbPath === '' || dbPath === ':memory:') {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected \`dbPath\` to be the path of a database file, got ${describe(dbPath)}`,
    );
  }
  const waitMs = options.waitMs ?? 0;
  if (!Number.isFinite(waitMs) || waitMs < 0) {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected \`waitMs\` to be a number >= 0, got ${describe(waitMs)}`,
    );
  }
  const canonical = await canonicalOrIoError(dbPath);
  const deadline = Date.now() + waitMs;
  const lockPath = `${canonical}.lock`;
  let connection: LockConnection | undefined;
  try {
    for (;;) {
      const held = heldLocks.get(canonical);
      if (held === undefined) {
        if (connection === undefined) {
          await createPrivateFile(lockPath).catch((error: unknown) => {
            throw ioError(dbPath, error, lockPath);
          });
          connection = openLockConnection(lockPath, dbPath);
        }
        if (tryLock(connection, lockPath)) {
          const lock = new OwnedLock(canonical, connection);
          connection = undefined;
          // Registered before the first await, so a double acquire in this thread is caught
          // by the registry from here on.
          heldLocks.set(canonical, lock);
          await writePidFile(lock).catch(async (error: unknown) => {
            await lock.release();
            throw error;
          });
          return lock;
        }
      }
      const owner = held === undefined ? await readOwnerPid(`${canonical}.lock.pid`) : process.pid;
      const ownerAlive = owner !== undefined && processIsAlive(owner);
      // A dead or unknown owner means the lock changed hands as we looked: retry at once,
      // for a short while, whatever waitMs says.
      const settling = !ownerAlive && Date.now() < deadline + PID_SETTLE_MS;
      if (Date.now() >= deadline && !settling) {
        throw lockedError(dbPath, lockPath, ownerAlive ? owner : undefined);
      }
      await sleep(RETRY_INTERVAL_MS);
    }
  } finally {
    // A contender's connection only ever ran exec(), so close() releases it deterministically.
    connection?.close();
  }
}

/** The canonical path (see `canonical-path.ts`), or `IO_ERROR` (e.g. a missing folder). */
async function canonicalOrIoError(dbPath: string): Promise<string> {
  try {
    return await canonicalPath(dbPath);
  } catch (error) {
    throw ioError(dbPath, error);
  }
}

/** Who holds the lock, as `probeProcessLock` sees it. */
export type LockProbe = { held: false } | { held: true; pid: number | undefined };

/**
 * Tells whether a process owns `dbPath`, without taking the lock for more than an instant and
 * without creating anything: when `<db>.lock` does not exist, no walguard process has ever
 * owned the database at that path, so it is free. Never call it in a process that may own the
 * database (closing its probe connection would drop this process's lock: see the header).
 */
export async function probeProcessLock(dbPath: string): Promise<LockProbe> {
  const canonical = await canonicalOrIoError(dbPath);
  const lockPath = `${canonical}.lock`;
  let exists: boolean;
  try {
    exists = await pathExists(lockPath);
  } catch (error) {
    throw ioError(dbPath, error, lockPath);
  }
  if (!exists) return { held: false };
  const connection = openLockConnection(lockPath, dbPath);
  try {
    if (tryLock(connection, lockPath)) {
      connection.exec('ROLLBACK');
      return { held: false };
    }
  } finally {
    connection.close();
  }
  const pid = await readOwnerPid(`${canonical}.lock.pid`);
  return { held: true, pid: pid !== undefined && processIsAlive(pid) ? pid : undefined };
}

/** Opens the private connection on the lock file. */
function openLockConnection(lockPath: string, dbPath: string): LockConnection {
  try {
    return new Database(lockPath, { timeout: 0 }) as unknown as LockConnection;
  } catch (error) {
    throw ioError(dbPath, error, lockPath);
  }
}

/** Tries once to take the lock: true when held, false when another owner has it. */
function tryLock(connection: LockConnection, lockPath: string): boolean {
  try {
    // In memory, the journal leaves no `-journal` file beside the lock, even after kill -9.
    connection.exec('PRAGMA journal_mode = MEMORY');
    connection.exec('BEGIN EXCLUSIVE');
    return true;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code === 'SQLITE_LOCKED')) {
      return false;
    }
    throw new WalguardError(
      code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' ? 'CORRUPT' : 'IO_ERROR',
      `Cannot take the process lock ${lockPath}: ${String((error as Error).message)}. ` +
        'The lock file holds no data; if no process is using the database, move it away.',
      { cause: error, details: { lockPath } },
    );
  }
}

/** Writes `<db>.lock.pid` by rename, so a contender never reads half a pid. */
async function writePidFile(lock: OwnedLock): Promise<void> {
  const temp = `${lock.pidPath}.${lock.pid}.tmp`;
  try {
    await writeFile(temp, `${lock.pid}\n`, { mode: 0o600 });
    await rename(temp, lock.pidPath);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    throw ioError(lock.dbPath, error, lock.pidPath);
  }
}

/** Reads the owner's pid from its pid file, or undefined. */
async function readOwnerPid(pidPath: string): Promise<number | undefined> {
  try {
    return parsePid(await readFile(pidPath, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The pid on the first line of a pid file, or undefined when there is none. */
function parsePid(text: string): number | undefined {
  const match = /^\s*(\d{1,10})\s*$/m.exec(text);
  const pid = match === null ? Number.NaN : Number(match[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function lockedError(dbPath: string, lockPath: string, pid: number | undefined): WalguardError {
  const who =
    pid === undefined
      ? 'another process (pid unknown)'
      : pid === process.pid
        ? `this process (pid ${pid})`
        : `process ${pid}`;
  return new WalguardError(
    'LOCKED',
    `Database ${dbPath} is locked by ${who}: only one process may own it for writing. ` +
      'Close the other instance first.',
    { details: { pid, dbPath, lockPath } },
  );
}

function ioError(dbPath: string, error: unknown, path: string = dbPath): WalguardError {
  return fileError(`Cannot lock database ${dbPath}: ${path}`, error, { dbPath, path });
}

function describe(value: unknown): string {
  return `\`${String(value)}\` (${typeof value})`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
