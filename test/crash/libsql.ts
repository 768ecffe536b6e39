/**
 * The subset of the `libsql` package's `Database` the crash harness uses,
 * typed here because the package's own types lack `encryptionKey` and say
 * nothing of `raw()` rows.
 */
import Libsql from 'libsql';

/** A prepared statement. */
export interface LibsqlStatement {
  /** Runs a write; returns the change count and last rowid. */
  run(...params: unknown[]): { changes: number; lastInsertRowid: number | bigint };
  /** Makes get()/all() return arrays instead of objects. */
  raw(toggle?: boolean): LibsqlStatement;
  /** First row, or undefined. */
  get(...params: unknown[]): unknown;
  /** All rows. */
  all(...params: unknown[]): unknown[];
}

/** An open connection. */
export interface LibsqlDatabase {
  /** Compiles one statement. */
  prepare(sql: string): LibsqlStatement;
  /** Runs one or more statements without results. */
  exec(sql: string): unknown;
  /** Runs a PRAGMA; with `simple`, returns the first column of the first row. */
  pragma(source: string, options?: { simple?: boolean }): unknown;
  /** Whether a transaction is open. */
  readonly inTransaction: boolean;
  /** Closes the connection (leaks its file descriptors in 0.5.x: libsql-js #228). */
  close(): unknown;
}

/** Options of {@link openLibsql}. */
export interface LibsqlOpenOptions {
  /** SQLite3MultipleCiphers key (aes256cbc); omit for a plaintext file. */
  encryptionKey?: string;
  /** Busy timeout in milliseconds. */
  timeout?: number;
}

/** An error thrown by libsql: `code` is SQLite's (extended) code name. */
export interface LibsqlError extends Error {
  /** e.g. `SQLITE_FULL`, `SQLITE_IOERR_FSYNC`. */
  code?: string;
  /** The numeric extended result code. */
  rawCode?: number;
}

const Ctor = Libsql as unknown as new (path: string, options?: LibsqlOpenOptions) => LibsqlDatabase;

/** Opens (creating if needed) a local database file. */
export function openLibsql(path: string, options: LibsqlOpenOptions = {}): LibsqlDatabase {
  const opts: LibsqlOpenOptions = {};
  if (options.encryptionKey !== undefined) opts.encryptionKey = options.encryptionKey;
  if (options.timeout !== undefined) opts.timeout = options.timeout;
  return new Ctor(path, opts);
}
