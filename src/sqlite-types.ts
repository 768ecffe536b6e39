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
  /**
   * Opens the connection read-only (SQLite's `mode=ro`; libsql 0.5.29 has no option for it,
   * so the path goes as a `file:` URI). For readers: see `openSqlite`.
   */
  readOnly?: boolean;
}

/**
 * Opens a connection with the `libsql` package.
 *
 * Why readers open read-only: libsql 0.5.29's `close()` on a connection that has prepared
 * statements leaves it open until those statements are garbage-collected (measured here: the
 * `-wal` stays after `close()` and goes at the next GC). When that late close finds itself
 * the last connection to the database, SQLite checkpoints the WAL and deletes it — a WAL
 * that another process may have written since and left behind by crashing, which walguard's
 * next open must inspect before SQLite touches it (`wal-inspect.ts`). A read-only
 * connection's close never checkpoints nor deletes the WAL (measured: a crashed writer's
 * 206 kB WAL stayed through the late close). The writer and the reader threads close for
 * good when their thread exits.
 */
export async function openSqlite(
  path: string,
  options: SqliteOpenOptions,
): Promise<SqliteDatabase> {
  const { default: Database } = await import('libsql');
  const { readOnly, ...rest } = options;
  const target = readOnly === true ? readOnlyUri(path) : path;
  return new Database(target, rest) as unknown as SqliteDatabase;
}

/** `path` as a read-only `file:` URI: `%`, `?` and `#` escaped, the rest as it is. */
export function readOnlyUri(path: string): string {
  const escaped = path.replace(
    /[%?#]/g,
    (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return `file:${escaped}?mode=ro`;
}
