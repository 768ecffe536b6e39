/**
 * The open sequence: take the process lock → inspect the file → resolve the key → start the
 * writer (its worker applies and reads back every setting) → start the reader threads and
 * open the main thread's reader (each connection the same) → the integrity check. On `CORRUPT` with `onCorruption: 'restore'`, the damaged files are
 * quarantined, the newest good backup is restored (`recovery.ts`), and the sequence runs once
 * more.
 *
 * This is the one durability module that assembles the layers above it (the writer client
 * of `queue/` and the reader of `repo/`): opening is where the durability decisions — which
 * key, is the file what the options say, is it intact — gate whether those connections may
 * exist at all. The decisions themselves live in `open-sequence.ts`.
 *
 * Invariants:
 * - Every connection opened here is closed again when a later step fails, and the lock is
 *   released.
 * - The integrity check runs on the reader before anyone can write: a damaged file is
 *   reported (or restored) before the app's first write could make it worse. The reader
 *   threads start meanwhile (their connections open in parallel with the check).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { isWalguardError, WalguardError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import { WriterClient } from '../queue/writer-client.js';
import { ReadRouter } from '../repo/read-router.js';
import { Reader } from '../repo/reader.js';
import { ReaderPool } from '../repo/reader-pool.js';
import { openSqlite } from '../sqlite-types.js';
import { connectionSettingsOf, type SettingsReadBack } from './connection-settings.js';
import { inspectDatabaseFile } from './file-inspect.js';
import { checkPragma, runIntegrityCheck } from './integrity.js';
import { checkFileAgainstOptions, explainOpenError, resolveKey } from './open-sequence.js';
import { acquireProcessLock, type ProcessLock } from './process-lock.js';
import { publishCorruption, type RecoveryInfo, restoreNewestBackup } from './recovery.js';

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
    return { ...(await openWithRecovery(options)), lock };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

async function openWithRecovery(
  options: ResolvedOptions,
): Promise<Omit<OpenedConnections, 'lock'>> {
  try {
    return await openOnce(options);
  } catch (error) {
    if (!isWalguardError(error, 'CORRUPT')) throw error;
    publishCorruption(options.path, error);
    if (options.onCorruption !== 'restore') throw error;
    // A damaged key file is not restored over: an operator decides (see recovery.ts).
    if (String(error.details?.path ?? '').endsWith('.keyinfo')) throw error;
    const recovery = await restoreNewestBackup(options, error);
    try {
      return { ...(await openOnce(options)), recovery };
    } catch (again) {
      if (isWalguardError(again, 'CORRUPT')) publishCorruption(options.path, again);
      throw again;
    }
  }
}

async function openOnce(options: ResolvedOptions): Promise<Omit<OpenedConnections, 'lock'>> {
  const log = options.logger.child({ component: 'open' });
  const file = await inspectDatabaseFile(options.path);
  log.info({ step: 'inspect', kind: file.kind, bytes: file.size }, 'database file inspected');
  checkFileAgainstOptions(file, options);
  const resolved = await resolveKey(file, options);
  log.info({ step: 'key', encrypted: resolved.key !== undefined }, 'key resolved');
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
    const db = await openSqlite(options.path, encryptionKey === undefined ? {} : { encryptionKey });
    reader = new Reader(db, settings);
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
