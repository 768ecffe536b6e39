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
import { type PreparedStatement, StatementCache } from '../queue/statement-cache.js';
import { invalidTextReport } from '../queue/text-guard.js';
import { bindable, toObjects } from '../row-codec.js';
import type { SqliteDatabase } from '../sqlite-types.js';

/** Thrown by `tryQuery` when the statement writes and must go to the writer. */
export const MUST_WRITE: unique symbol = Symbol('walguard.mustWrite');

export class Reader {
  readonly #db: SqliteDatabase;
  /** Prepared statements by SQL text, guarded (see `statement-cache.ts`). */
  readonly #statements: StatementCache;
  /** The settings as read back at open. */
  readonly settings: SettingsReadBack;

  constructor(db: SqliteDatabase, settings: ConnectionSettings) {
    this.#db = db;
    this.settings = applyConnectionSettings(db, 'reader', settings);
    this.#statements = new StatementCache(db, { safeIntegers: settings.safeIntegers === true });
  }

  /** Runs a statement known to only read (a select, or an EXPLAIN of anything). */
  query(sql: string, params: readonly unknown[]): StatementResult {
    try {
      const prepared = this.#statements.get(sql, 'read');
      return { rows: this.#statements.rows(prepared, params) };
    } catch (error) {
      throw toUnitError(error);
    }
  }

  /** Runs a statement that may read or write; throws `MUST_WRITE` when it writes. */
  tryQuery(sql: string, params: readonly unknown[]): StatementResult {
    let prepared: PreparedStatement;
    try {
      prepared = this.#statements.get(sql, 'read');
    } catch (error) {
      // Some statements write while they are prepared (libSQL's vector index DDL creates its
      // shadow tables): a query-only refusal at prepare time also means "go to the writer".
      if (isReadOnlyRefusal(error)) throw MUST_WRITE;
      throw toUnitError(error);
    }
    // A statement that returns no rows is a write, DDL, or a connection command: all belong
    // to the writer.
    if (prepared.names === undefined) throw MUST_WRITE;
    try {
      return { rows: this.#statements.rows(prepared, params) };
    } catch (error) {
      if (isReadOnlyRefusal(error)) throw MUST_WRITE;
      throw toUnitError(error);
    }
  }

  /**
   * Streams the rows of a read, one chunk at a time, on a statement of its own. A stream left
   * early is reset at once (libsql's row iterator cannot be closed, and until the statement
   * is reset it pins the snapshot it read from: later reads would not see new writes, and
   * checkpoints could not finish); the reset re-runs the query up to its first row.
   */
  *stream(sql: string, params: readonly unknown[], chunkSize: number): Generator<StatementResult> {
    let prepared: PreparedStatement;
    try {
      prepared = this.#statements.prepare(sql, 'read');
    } catch (error) {
      throw toUnitError(error);
    }
    const names = prepared.names ?? [];
    const bound = bindable(params);
    const iterator = prepared.statement.iterate(bound);
    let finished = false;
    try {
      let chunk: unknown[][] = [];
      for (const row of iterator) {
        chunk.push(row as unknown[]);
        if (chunk.length >= chunkSize) {
          yield { rows: toObjects(names, chunk) };
          chunk = [];
        }
      }
      finished = true;
      if (chunk.length > 0) yield { rows: toObjects(names, chunk) };
    } finally {
      if (!finished) {
        try {
          prepared.statement.get(bound);
        } catch {
          // The statement failed mid-run: SQLite already ended it.
        }
      }
    }
  }

  /** Runs a PRAGMA or check and returns its raw rows. */
  rawRows(sql: string): unknown[][] {
    return this.#db.prepare(sql).raw(true).all() as unknown[][];
  }

  /** One message per column holding TEXT that is not UTF-8 (a full scan of every table). */
  invalidText(): Promise<string[]> {
    return invalidTextReport((sql) => this.rawRows(sql));
  }

  /** Closes the connection. */
  close(): void {
    this.#statements.clear();
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
