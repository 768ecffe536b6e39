/**
 * The subset of the `libsql` package's synchronous API that walguard uses, declared here
 * (as Kysely declares the subset of better-sqlite3 it needs) so that the writer and the
 * reader depend on a shape, not a package, and tests can stand in for it.
 */

/** A prepared statement. */
export interface SqliteStatement {
  /** True when the statement returns rows (SELECT, PRAGMA, `… RETURNING`). */
  readonly reader: boolean;
  /** Switches the statement to return rows as arrays of values. */
  raw(toggle?: boolean): this;
  /** Switches the statement to return INTEGER values as `bigint` (exact beyond 2^53). */
  safeIntegers(toggle?: boolean): this;
  /** The result columns, in order. */
  columns(): { name: string }[];
  /** Runs a writing statement. */
  run(params?: unknown): { changes: number; lastInsertRowid: number | bigint };
  /** Runs and returns the first row, then resets the statement (the one call that does). */
  get(params?: unknown): unknown;
  /** Runs and returns all rows. */
  all(params?: unknown): unknown[];
  /** Runs and returns rows one at a time. */
  iterate(params?: unknown): IterableIterator<unknown>;
}

/** An open connection. */
export interface SqliteDatabase {
  /** True while a transaction is open on this connection. */
  readonly inTransaction: boolean;
  /** Compiles a statement. */
  prepare(sql: string): SqliteStatement;
  /** Runs one or more statements without results. */
  exec(sql: string): unknown;
  /** Closes the connection (libsql 0.5.29 leaks its file descriptors: keep connections long-lived). */
  close(): unknown;
}

/** Options of the `libsql` `Database` constructor that walguard uses. */
export interface SqliteOpenOptions {
  /** aes256cbc key (SQLite3MultipleCiphers); in force before the first statement. */
  encryptionKey?: string;
  /** Busy timeout in ms applied by the binding at open. */
  timeout?: number;
}

/** Opens a connection with the `libsql` package. */
export async function openSqlite(
  path: string,
  options: SqliteOpenOptions,
): Promise<SqliteDatabase> {
  const { default: Database } = await import('libsql');
  return new Database(path, options) as unknown as SqliteDatabase;
}
