/**
 * Every connection carries every setting (contract line 7).
 *
 * Strategy: right after a connection is opened (the encryption key was given to the
 * constructor, so it is in force before the first statement), walguard sets each PRAGMA and
 * then reads every one of them back. A value that does not read back as configured fails the
 * open with `INVALID_OPTION`: a setting that silently did not apply (the failure mode measured
 * with `@libsql/client`'s pooled local connections) must never go unnoticed.
 *
 * `journal_mode=WAL` is persistent in the file, so only the writer sets it; the reader checks
 * it. The reader also runs with `query_only=1`: libsql 0.5.29 ignores its own `readonly`
 * open flag (measured here: a "readonly" connection wrote rows), and `query_only` is what
 * lets walguard route a raw statement that turns out to write to the writer instead.
 */
import { WalguardError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import type { SqliteDatabase } from '../sqlite-types.js';

/** The settings applied to each connection. */
export interface ConnectionSettings {
  /** `synchronous` level (NORMAL=1, FULL=2, EXTRA=3). */
  synchronous: 'NORMAL' | 'FULL' | 'EXTRA';
  /** `busy_timeout` in ms. */
  busyTimeoutMs: number;
  /** Page cache in KiB (applied as a negative `cache_size`). */
  cacheSizeKiB: number;
  /** `wal_autocheckpoint` in pages. */
  walAutocheckpointPages: number;
  /** `journal_size_limit` in bytes: the WAL is truncated to this after a reset. */
  journalSizeLimitBytes: number;
  /** `fullfsync` and `checkpoint_fullfsync` (F_FULLFSYNC): on by default on macOS only, where plain fsync does not reach the platters. */
  fullfsync: boolean;
  /** INTEGER values come back as `bigint` (libsql's `safeIntegers`, set on each statement, not a PRAGMA). */
  safeIntegers?: boolean;
}

/** The connection settings walguard applies for these options (the open and the CLI alike). */
export function connectionSettingsOf(options: ResolvedOptions): ConnectionSettings {
  return {
    synchronous: options.synchronous,
    busyTimeoutMs: options.busyTimeoutMs,
    cacheSizeKiB: options.cacheSizeKiB,
    walAutocheckpointPages: options.walAutocheckpointPages,
    journalSizeLimitBytes: options.checkpoint.walSizeLimitBytes,
    fullfsync: process.platform === 'darwin',
    safeIntegers: options.safeIntegers,
  };
}

/** The role of a connection: the single writer, or a query-only reader. */
export type ConnectionRole = 'writer' | 'reader';

/** Settings as read back from a connection. */
export interface SettingsReadBack {
  journal_mode: string;
  synchronous: number;
  busy_timeout: number;
  foreign_keys: number;
  cache_size: number;
  wal_autocheckpoint: number;
  journal_size_limit: number;
  fullfsync: number;
  checkpoint_fullfsync: number;
  query_only: number;
}

const synchronousValue = { NORMAL: 1, FULL: 2, EXTRA: 3 } as const;

/** Reads one PRAGMA's single value. */
export function readPragma(db: SqliteDatabase, name: string): unknown {
  const row = db.prepare(`PRAGMA ${name}`).raw(true).get() as unknown[] | undefined;
  return row?.[0];
}

/** Applies the settings to a freshly opened connection, then verifies them. */
export function applyConnectionSettings(
  db: SqliteDatabase,
  role: ConnectionRole,
  settings: ConnectionSettings,
): SettingsReadBack {
  // busy_timeout first, so that setting WAL mode waits out a checkpointing neighbour.
  db.exec(`PRAGMA busy_timeout = ${settings.busyTimeoutMs}`);
  if (role === 'writer') {
    db.exec('PRAGMA journal_mode = WAL');
  }
  db.exec(`PRAGMA synchronous = ${settings.synchronous}`);
  db.exec('PRAGMA foreign_keys = ON');
  db.exec(`PRAGMA cache_size = ${-settings.cacheSizeKiB}`);
  db.exec(`PRAGMA wal_autocheckpoint = ${settings.walAutocheckpointPages}`);
  db.exec(`PRAGMA journal_size_limit = ${settings.journalSizeLimitBytes}`);
  db.exec(`PRAGMA fullfsync = ${settings.fullfsync ? 1 : 0}`);
  db.exec(`PRAGMA checkpoint_fullfsync = ${settings.fullfsync ? 1 : 0}`);
  db.exec(`PRAGMA query_only = ${role === 'reader' ? 1 : 0}`);
  return verifyConnectionSettings(db, role, settings);
}

/** Reads every setting back and fails with `INVALID_OPTION` on the first mismatch. */
export function verifyConnectionSettings(
  db: SqliteDatabase,
  role: ConnectionRole,
  settings: ConnectionSettings,
): SettingsReadBack {
  const got: SettingsReadBack = {
    journal_mode: String(readPragma(db, 'journal_mode')).toLowerCase(),
    synchronous: Number(readPragma(db, 'synchronous')),
    busy_timeout: Number(readPragma(db, 'busy_timeout')),
    foreign_keys: Number(readPragma(db, 'foreign_keys')),
    cache_size: Number(readPragma(db, 'cache_size')),
    wal_autocheckpoint: Number(readPragma(db, 'wal_autocheckpoint')),
    journal_size_limit: Number(readPragma(db, 'journal_size_limit')),
    fullfsync: Number(readPragma(db, 'fullfsync')),
    checkpoint_fullfsync: Number(readPragma(db, 'checkpoint_fullfsync')),
    query_only: Number(readPragma(db, 'query_only')),
  };
  const want: SettingsReadBack = {
    journal_mode: 'wal',
    synchronous: synchronousValue[settings.synchronous],
    busy_timeout: settings.busyTimeoutMs,
    foreign_keys: 1,
    cache_size: -settings.cacheSizeKiB,
    wal_autocheckpoint: settings.walAutocheckpointPages,
    journal_size_limit: settings.journalSizeLimitBytes,
    fullfsync: settings.fullfsync ? 1 : 0,
    checkpoint_fullfsync: settings.fullfsync ? 1 : 0,
    query_only: role === 'reader' ? 1 : 0,
  };
  for (const key of Object.keys(want) as (keyof SettingsReadBack)[]) {
    if (got[key] !== want[key]) {
      throw new WalguardError(
        'INVALID_OPTION',
        `Expected PRAGMA ${key} to read back \`${want[key]}\` on the ${role} connection, got \`${got[key]}\`` +
          (key === 'journal_mode'
            ? ' (WAL needs a local file system with shared memory; network and some container file systems refuse it)'
            : ''),
        { details: { pragma: key, expected: want[key], actual: got[key], role } },
      );
    }
  }
  return got;
}
