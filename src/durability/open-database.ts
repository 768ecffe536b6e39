/**
 * The open sequence: take the process lock → finish an interrupted restore → remove the temp
 * files of dead backups and restores → inspect the file and its WAL → resolve the key → the
 * identity → start the writer (its worker applies and reads back every setting) → start the
 * reader threads and open the main thread's reader (each connection the same) → the
 * integrity check. On `CORRUPT` with `onCorruption: 'restore'`, the newest good backup of
 * this database is restored (`recovery.ts`; the damaged files go to quarantine), and the
 * sequence runs once more.
 *
 * This is the one durability module that assembles the layers above it (the writer client
 * of `queue/` and the reader of `repo/`): opening is where the durability decisions — which
 * key, is the file what the options say, is it intact — gate whether those connections may
 * exist at all. The decisions themselves live in `open-sequence.ts`.
 *
 * Before SQLite touches anything (it would act on what it finds, and some of its actions
 * destroy evidence), walguard looks at the files itself:
 * - An intent of an interrupted restore (`restore.ts`) is finished first: until then the
 *   files at the path may be a mix of the old database and the restored one.
 * - No database, or a 0-byte one (a first open that died before SQLite wrote page 1): a new
 *   database — unless its `-wal` holds committed transactions (SQLite deletes the WAL of a
 *   0-page database on open: the database and the WAL are quarantined and the open fails
 *   with `CORRUPT`), or an unresolved quarantine of this path says where its data went (an
 *   unfinished restore, a damaged WAL quarantined earlier): then the open fails with
 *   `CORRUPT` naming the folder, and never creates an empty database in its place.
 * - An existing database's `-wal` is read (`wal-inspect.ts`): damage that would make SQLite's
 *   recovery drop committed transactions quarantines the database and the WAL byte for byte
 *   and fails with `CORRUPT` naming the frame.
 * - A new database file is created by walguard with mode 0600, so that SQLite, which gives its
 *   `-wal` and `-shm` the database's mode, creates those 0600 too (no umask games: the umask
 *   is process-wide, and changing it around an open would race with every other thread).
 *
 * Invariants:
 * - Every connection opened here is closed again when a later step fails, and the lock is
 *   released.
 * - The integrity check runs on the reader before anyone can write: a damaged file is
 *   reported (or restored) before the app's first write could make it worse. The reader
 *   threads start meanwhile (their connections open in parallel with the check).
 * - Engine errors at open become walguard's codes: `SQLITE_FULL` (and a `-shm` that cannot
 *   grow) `DISK_FULL`, other I/O errors `IO_ERROR`. A first open that fails leaves at most a
 *   0-byte database (which the next open treats as new), its key file and identity.
 */
import { mkdirSync } from 'node:fs';
import { readFile, truncate } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { isWalguardError, WalguardError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import { WriterClient } from '../queue/writer-client.js';
import { ReadRouter } from '../repo/read-router.js';
import { Reader } from '../repo/reader.js';
import { ReaderPool } from '../repo/reader-pool.js';
import { openSqlite } from '../sqlite-types.js';
import { removeBackupLeftovers } from './backups.js';
import { connectionSettingsOf, type SettingsReadBack } from './connection-settings.js';
import { ensureIdentity, readIdentity } from './database-identity.js';
import { type DatabaseFileInfo, inspectDatabaseFile } from './file-inspect.js';
import { createPrivateFile, fileError, fsyncDirectory, fsyncFile } from './fs-sync.js';
import { checkPragma, runIntegrityCheck } from './integrity.js';
import { checkFileAgainstOptions, explainOpenError, resolveKey } from './open-sequence.js';
import { acquireProcessLock, type ProcessLock } from './process-lock.js';
import {
  findUnresolvedQuarantines,
  markQuarantineResolved,
  quarantineDatabase,
} from './quarantine.js';
import { publishCorruption, type RecoveryInfo, restoreNewestBackup } from './recovery.js';
import { finishInterruptedRestore, removeRestoreLeftovers } from './restore.js';
import { inspectWal } from './wal-inspect.js';

/** The connections of an open database, each with its settings verified. */
export interface OpenedConnections {
  /** The writer worker's handle. */
  client: WriterClient;
  /** The reads: the main thread's reader and the reader threads. */
  reads: ReadRouter;
  /** The settings as read back from each connection. */
  settings: {
    writer: SettingsReadBack;
    reader: SettingsReadBack;
    readerThreads: SettingsReadBack[];
  };
  /** The key in force (never logged), for backups. */
  encryptionKey: string | undefined;
  /** Set when the database was damaged and a backup was restored. */
  recovery: RecoveryInfo | undefined;
  /** This process's ownership of the database; released by close(). */
  lock: ProcessLock;
}

type Opened = Omit<OpenedConnections, 'lock'>;

/**
 * Runs the open sequence (see the file header); the lock is released again when it fails.
 * A missing parent folder is created.
 */
export async function openConnections(options: ResolvedOptions): Promise<OpenedConnections> {
  mkdirSync(path.dirname(options.path), { recursive: true });
  const lock = await acquireProcessLock(options.path, { waitMs: options.lockWaitMs });
  options.logger
    .child({ component: 'open' })
    .info({ step: 'lock', path: options.path }, 'process lock acquired');
  try {
    return { ...(await openWithRecovery(options, lock.dbPath)), lock };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

async function openWithRecovery(options: ResolvedOptions, db: string): Promise<Opened> {
  const log = options.logger.child({ component: 'open' });
  await cleanUp(options, db, log);
  try {
    return await openOnce(options, db, log);
  } catch (error) {
    if (!isWalguardError(error, 'CORRUPT')) throw error;
    publishCorruption(options.path, error);
    if (options.onCorruption !== 'restore') throw error;
    // A damaged key file is not restored over: an operator decides (see recovery.ts).
    if (String(error.details?.path ?? '').endsWith('.keyinfo')) throw error;
    const identity = await readIdentity(db);
    const database = { name: path.basename(db), path: db, id: identity?.id };
    const recovery = await restoreNewestBackup(options, database, error);
    try {
      return { ...(await openOnce(options, db, log)), recovery };
    } catch (again) {
      if (isWalguardError(again, 'CORRUPT')) publishCorruption(options.path, again);
      throw again;
    }
  }
}

/** Finishes an interrupted restore and removes what dead backups and restores left behind. */
async function cleanUp(options: ResolvedOptions, db: string, log: Logger): Promise<void> {
  const finished = await finishInterruptedRestore(db);
  if (finished !== undefined) {
    log.warn(
      { step: 'restore', ...finished },
      `finished a restore from ${finished.restoredFrom} that was interrupted (the files it replaced are in ${finished.quarantineDir ?? 'no folder: there were none'})`,
    );
  }
  await removeRestoreLeftovers(db);
  const removed = await removeBackupLeftovers(options.backup.dir, path.basename(db));
  if (removed.length > 0) {
    log.info({ step: 'cleanup', removed }, 'removed the temp files of backups whose process died');
  }
}

async function openOnce(options: ResolvedOptions, db: string, log: Logger): Promise<Opened> {
  let file = await inspectDatabaseFile(db);
  log.info({ step: 'inspect', kind: file.kind, bytes: file.size }, 'database file inspected');
  const torn = await tornFirstPage(db, file);
  const fresh = torn !== undefined || file.kind === 'missing' || file.kind === 'empty';
  if (fresh) await checkNewDatabase(db, file);
  else await checkWal(db);
  if (torn === 'zeros') {
    try {
      await truncate(db, 0);
      await fsyncFile(db);
    } catch (error) {
      throw fileError(`Cannot empty ${db}`, error, { path: db });
    }
    log.warn(
      { step: 'inspect', bytes: file.size },
      `${db} held only zeros (${file.size} bytes): a first open whose first page never reached the disk; opened as a new database`,
    );
    file = { ...file, kind: 'empty', size: 0 };
  } else if (torn === 'headerless') {
    const reason = `${db} is one page (${file.size} bytes) whose first sector, the header, is zeros: a first open whose first page never reached the disk whole; a new database took its place`;
    const moved = await quarantineDatabase(db, { reason });
    await markQuarantineResolved(moved.dir, {
      kind: 'replaced-by-new',
      at: new Date().toISOString(),
    });
    log.warn({ step: 'inspect', quarantineDir: moved.dir }, `${reason} (kept in ${moved.dir})`);
    file = { ...file, kind: 'missing', size: 0 };
  }
  checkFileAgainstOptions(file, options);
  const resolved = await resolveKey(file, { ...options, path: db });
  log.info({ step: 'key', encrypted: resolved.key !== undefined }, 'key resolved');
  try {
    if (file.kind === 'missing' && (await createPrivateFile(db))) {
      await fsyncDirectory(path.dirname(db));
    }
    await ensureIdentity(db, { fresh });
  } catch (error) {
    throw fileError(`Cannot create ${db}`, error, { path: db });
  }
  const settings = connectionSettingsOf(options);
  const encryptionKey = resolved.key;
  let client: WriterClient;
  let writer: SettingsReadBack;
  // The reader threads load their code while the writer starts, and open their connections
  // once it is up (it puts a new file in WAL mode first).
  let writerUp!: (up: boolean) => void;
  const poolStart = ReaderPool.start(
    { path: options.path, encryptionKey, settings, nice: options.readers.nice },
    options.readers.threads,
    options.logger.child({ component: 'readers' }),
    new Promise<boolean>((resolve) => {
      writerUp = resolve;
    }),
  );
  // Observed at once: a failure is handled below, after the reader's own steps.
  poolStart.catch(() => {});
  try {
    ({ client, settings: writer } = await WriterClient.start(
      {
        path: options.path,
        encryptionKey,
        settings,
        transactionTimeoutMs: options.transactionTimeoutMs,
      },
      options.logger.child({ component: 'writer' }),
    ));
  } catch (error) {
    writerUp(false);
    await poolStart.catch(() => {});
    throw explainOpenError(error, resolved, options);
  }
  writerUp(true);
  log.info({ step: 'writer', settings: writer }, 'writer connection open, settings verified');
  let reader: Reader | undefined;
  let pool: ReaderPool | undefined;
  try {
    const sqlite = await openSqlite(options.path, {
      readOnly: true,
      ...(encryptionKey === undefined ? {} : { encryptionKey }),
    });
    reader = new Reader(sqlite, settings);
    log.info(
      { step: 'reader', settings: reader.settings },
      'reader connection open, settings verified',
    );
    if (options.integrityCheck !== 'off') {
      const level = options.integrityCheck;
      const result = await runIntegrityCheck(reader, level, options.path, 'open');
      log.info({ step: 'integrity', check: level, ok: result.ok }, 'integrity checked'); // `level` is pino's
      if (!result.ok) {
        throw new WalguardError(
          'CORRUPT',
          `${options.path} failed its ${checkPragma(level)}: ${result.messages.slice(0, 5).join('; ')}. The file was not changed; restore a backup (or open with onCorruption: 'restore')`,
          { details: { path: options.path, messages: result.messages.slice(0, 20) } },
        );
      }
    }
    pool = await poolStart;
    log.info(
      { step: 'readers', threads: pool.threads, settings: pool.settings[0] },
      'reader threads open, settings verified on each',
    );
  } catch (error) {
    try {
      reader?.close();
    } catch {
      // Closing a reader on a damaged file is best effort; the error below is what matters.
    }
    await poolStart.then(
      (started) => started.close(),
      () => {},
    );
    await client.close();
    throw explainOpenError(error, resolved, options);
  }
  const reads = new ReadRouter(reader, pool, options.readers);
  return {
    client,
    reads,
    settings: { writer, reader: reader.settings, readerThreads: pool.settings },
    encryptionKey,
    recovery: undefined,
  };
}

/** The largest page SQLite writes (bytes). */
const MAX_PAGE_SIZE = 65536;

/** SQLite's default page size: a new database's first page, as walguard creates it. */
const FIRST_PAGE_SIZE = 4096;

/** The smallest unit a disk writes whole (the power-loss harness tears writes at it). */
const SECTOR = 512;

/**
 * What a new database's first write (page 1, when SQLite switches it to WAL mode) left when a
 * power loss tore it by sectors and lost the first one, the header — what the power-loss
 * harness's first-open rows found; undefined for anything else:
 * - `zeros`: a file of zeros no longer than the largest page (64 KiB). Zeros hold nothing: it
 *   is emptied and opened as new, like a 0-byte file (SQLite refuses a file without header).
 * - `headerless`: one page (at most 4096 bytes) whose first sector is zeros and whose rest is
 *   not (an encrypted page: ciphertext). A table needs a root page of its own, so one page
 *   holds no rows; still, it is moved to quarantine (kept), not emptied, and a new database
 *   takes its place.
 * Both only after the checks of a new database (no WAL commits, no unresolved quarantine).
 * Any other header-less file — more than a page, or a first sector that is not zeros — stays
 * `CORRUPT`.
 */
async function tornFirstPage(
  db: string,
  file: DatabaseFileInfo,
): Promise<'zeros' | 'headerless' | undefined> {
  if (file.kind !== 'encrypted-or-garbage' || file.likelyEncrypted) return undefined;
  if (file.size === 0 || file.size > MAX_PAGE_SIZE) return undefined;
  let bytes: Buffer;
  try {
    bytes = await readFile(db);
  } catch (error) {
    throw fileError(`Cannot read ${db}`, error, { path: db });
  }
  if (bytes.length === 0 || bytes.length > MAX_PAGE_SIZE) return undefined;
  if (bytes.every((b) => b === 0)) return 'zeros';
  const headerSectorLost = bytes.subarray(0, SECTOR).every((b) => b === 0);
  if (bytes.length <= FIRST_PAGE_SIZE && headerSectorLost) return 'headerless';
  return undefined;
}

/**
 * A missing or 0-byte database is new — unless its WAL holds commits, or an unresolved
 * quarantine says where its data went (see the file header). Throws `CORRUPT` then.
 */
async function checkNewDatabase(db: string, file: DatabaseFileInfo): Promise<void> {
  const wal = await inspectWal(db);
  if (wal.commits > 0 || wal.damage !== null) {
    const state = file.kind === 'missing' ? 'missing' : 'empty (0 bytes)';
    const why = `${db} is ${state}, but its WAL ${wal.path} holds ${wal.commits} committed transaction(s)${wal.damage === null ? '' : ` and is damaged (${wal.damage.reason})`}: SQLite would delete that WAL when it opens the database`;
    const moved = await quarantineDatabase(db, { reason: why });
    throw new WalguardError(
      'CORRUPT',
      `${why}. Both were moved, unchanged, to ${moved.dir}; nothing was opened. Restore a backup, or recover the transactions from the WAL there with an expert's help`,
      { details: { path: db, source: 'wal', quarantineDir: moved.dir, walCommits: wal.commits } },
    );
  }
  const unresolved = await findUnresolvedQuarantines(db);
  const last = unresolved.at(-1);
  if (last !== undefined) {
    const state = file.kind === 'missing' ? 'no database at' : 'only an empty (0-byte) file at';
    throw new WalguardError(
      'CORRUPT',
      `There is ${state} ${db}, but ${last.dir} holds its files, quarantined${last.record.quarantinedAt ? ` at ${last.record.quarantinedAt}` : ''} (${last.record.reason}), and no restore has put a database back since: walguard will not create an empty database in its place. Restore a backup (walguard restore ${db} latest, or open with onCorruption: 'restore'), or move ${last.dir} elsewhere to start a new, empty database`,
      {
        details: {
          path: db,
          source: 'quarantine',
          quarantineDir: last.dir,
          quarantines: unresolved.map((q) => q.dir),
        },
      },
    );
  }
}

/** Quarantines the database and its WAL, and throws `CORRUPT`, when the WAL is damaged. */
async function checkWal(db: string): Promise<void> {
  const wal = await inspectWal(db);
  if (wal.damage === null) return;
  const { frame, reason, droppedCommits } = wal.damage;
  const where = frame === 0 ? 'the WAL header' : `frame ${frame}`;
  const why = `The WAL of ${db} is damaged at ${where}: ${reason}; SQLite's recovery would silently drop the ${droppedCommits} committed transaction(s) after it`;
  const moved = await quarantineDatabase(db, { reason: why });
  throw new WalguardError(
    'CORRUPT',
    `${why}. The database and its WAL were moved, unchanged, to ${moved.dir} before anything opened them. Restore a backup (or open with onCorruption: 'restore')`,
    {
      details: {
        path: db,
        source: 'wal',
        walFrame: frame,
        droppedCommits,
        quarantineDir: moved.dir,
      },
    },
  );
}
