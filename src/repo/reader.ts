/**
 * The reader: walguard's read connection, on the main thread.
 *
 * Reads never wait for the writer (contract line 5): in WAL mode a reader sees the last
 * committed snapshot while the writer's transaction is open. Each statement outside an
 * explicit read transaction takes a fresh snapshot, so a read that starts after a write was
 * acknowledged sees it.
 *
 * The connection runs with `query_only=1`. A raw statement whose kind walguard cannot tell
 * from Kysely's operation tree is tried here first; if it turns out to write, SQLite refuses
 * it (`SQLITE_READONLY`) before changing anything and the caller routes it to the writer.
 */
import {
  applyConnectionSettings,
  type ConnectionSettings,
  type SettingsReadBack,
} from '../durability/connection-settings.js';
import { toUnitError } from '../errors.js';
import type { StatementResult } from '../queue/protocol.js';
import { bindable, toObjects } from '../row-codec.js';
import type { SqliteDatabase, SqliteStatement } from '../sqlite-types.js';

/** Most prepared statements kept on the reader. */
const STATEMENT_CACHE_SIZE = 512;

/** Thrown by `tryQuery` when the statement writes and must go to the writer. */
export const MUST_WRITE: unique symbol = Symbol('walguard.mustWrite');

export class Reader {
  readonly #db: SqliteDatabase;
  /** Prepared statements by SQL text (least recently used first). */
  readonly #cache = new Map<string, SqliteStatement>();
  /** The settings as read back at open. */
  readonly settings: SettingsReadBack;

  constructor(db: SqliteDatabase, settings: ConnectionSettings) {
    this.#db = db;
    this.settings = applyConnectionSettings(db, 'reader', settings);
  }

  /** Runs a statement known to only read. */
  query(sql: string, params: readonly unknown[]): StatementResult {
    const statement = this.#prepare(sql);
    try {
      return { rows: toObjects(statement, statement.all(bindable(params)) as unknown[][]) };
    } catch (error) {
      throw toUnitError(error);
    }
  }

  /** Runs a statement that may read or write; throws `MUST_WRITE` when it writes. */
  tryQuery(sql: string, params: readonly unknown[]): StatementResult {
    let statement: SqliteStatement;
    try {
      statement = this.#prepare(sql);
    } catch (error) {
      // Some statements write while they are prepared (libSQL's vector index DDL creates its
      // shadow tables): a query-only refusal at prepare time also means "go to the writer".
      if (isReadOnlyRefusal(error)) throw MUST_WRITE;
      throw toUnitError(error);
    }
    // A statement that returns no rows is a write, DDL, or a connection command (PRAGMA x = y):
    // all belong to the writer.
    if (!statement.reader) throw MUST_WRITE;
    try {
      return { rows: toObjects(statement, statement.all(bindable(params)) as unknown[][]) };
    } catch (error) {
      if (isReadOnlyRefusal(error)) throw MUST_WRITE;
      throw toUnitError(error);
    }
  }

  /** Streams the rows of a read, one chunk at a time, on a statement of its own. */
  *stream(sql: string, params: readonly unknown[], chunkSize: number): Generator<StatementResult> {
    let statement: SqliteStatement;
    try {
      statement = this.#db.prepare(sql);
    } catch (error) {
      throw toUnitError(error);
    }
    if (statement.reader) statement.raw(true);
    const iterator = statement.iterate(bindable(params));
    let finished = false;
    try {
      let chunk: Record<string, unknown>[] = [];
      for (const row of iterator) {
        chunk.push(toObjects(statement, [row as unknown[]])[0]!);
        if (chunk.length >= chunkSize) {
          yield { rows: chunk };
          chunk = [];
        }
      }
      finished = true;
      if (chunk.length > 0) yield { rows: chunk };
    } catch (error) {
      finished = true;
      throw error;
    } finally {
      // Ends the statement, and with it the read snapshot it holds. libsql 0.5.29's iterator
      // has no return(), and an unfinished statement kept its snapshot (later reads on this
      // connection saw none of the later writes, measured); running it once more with get()
      // resets it: the cost of finding its first row again.
      if (!finished) statement.get(bindable(params));
    }
  }

  /** Runs a PRAGMA or check and returns its raw rows. */
  rawRows(sql: string): unknown[][] {
    return this.#db.prepare(sql).raw(true).all() as unknown[][];
  }

  #prepare(sql: string): SqliteStatement {
    let statement = this.#cache.get(sql);
    if (statement !== undefined) {
      this.#cache.delete(sql);
    } else {
      statement = this.#db.prepare(sql);
      if (statement.reader) statement.raw(true);
      if (this.#cache.size >= STATEMENT_CACHE_SIZE) {
        this.#cache.delete(this.#cache.keys().next().value as string);
      }
    }
    this.#cache.set(sql, statement);
    return statement;
  }

  /** Closes the connection. */
  close(): void {
    this.#cache.clear();
    this.#db.close();
  }
}

/** True for the reader's query-only refusal of a statement that writes. */
function isReadOnlyRefusal(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  return (
    e?.code === 'SQLITE_READONLY' ||
    (typeof e?.message === 'string' && e.message.includes('attempt to write a readonly database'))
  );
}
