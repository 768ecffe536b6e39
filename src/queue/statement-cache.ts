/**
 * Prepared statements by SQL text, as walguard runs them on a connection: refused by the
 * statement guard (`statement-guard.ts`) before anything is prepared, rewritten by the text
 * guard (`text-guard.ts`) so that no TEXT value libsql cannot convert reaches it, switched to
 * `bigint` integers when `safeIntegers` is on, and left clean after every run. Shared by the
 * writer (in its worker thread) and the reader, wherever they run.
 *
 * Invariants:
 * - A statement is never left mid-run: every run reads to the end (`all()`), and an EXPLAIN
 *   is reset after it (libsql 0.5.29 leaves an EXPLAIN unreset after `all()`; measured: on
 *   the writer every later COMMIT then fails with SQLITE_BUSY "statements in progress", on
 *   the reader it pins an old snapshot). `get()` is the one libsql call that resets.
 * - The least recently used statement is dropped past `size` (libsql finalizes it with the
 *   object).
 */
import { bindable, toObjects } from '../row-codec.js';
import type { SqliteDatabase, SqliteStatement } from '../sqlite-types.js';
import {
  assertAllowed,
  checkStatement,
  refusal,
  type StatementContext,
  type StatementFacts,
} from './statement-guard.js';
import { guardedForms } from './text-guard.js';

/** A statement ready to run. */
export interface PreparedStatement {
  /** The SQL text as given (the cache key). */
  readonly sql: string;
  /** What the statement guard read from it. */
  readonly facts: StatementFacts;
  /** What runs: the guarded rewrite when the statement returns rows. */
  readonly statement: SqliteStatement;
  /** Result column names, for statements that return rows; undefined for the others. */
  readonly names: readonly string[] | undefined;
}

/** What one run of a statement that returns no rows did. */
export interface RunResult {
  /** Rows changed. */
  changes: number;
  /** `last_insert_rowid()`, exact (libsql reports it as a double). */
  insertId: bigint;
}

/** Options of a `StatementCache`. */
export interface StatementCacheOptions {
  /** Return INTEGER values as `bigint`. */
  safeIntegers: boolean;
  /** Most statements kept. Default 512. */
  size?: number;
}

export class StatementCache {
  readonly #db: SqliteDatabase;
  readonly #safeIntegers: boolean;
  readonly #size: number;
  /** Statements by SQL text, least recently used first. */
  readonly #cache = new Map<string, PreparedStatement>();
  /** `SELECT last_insert_rowid()` with bigint results, prepared when first needed. */
  #lastRowid: SqliteStatement | undefined;

  constructor(db: SqliteDatabase, options: StatementCacheOptions) {
    this.#db = db;
    this.#safeIntegers = options.safeIntegers;
    this.#size = options.size ?? 512;
  }

  /** The statement for `sql`, prepared at most once; throws `INVALID_ARGUMENT` when refused in `context`. */
  get(sql: string, context: StatementContext): PreparedStatement {
    let prepared = this.#cache.get(sql);
    if (prepared !== undefined) {
      // Re-insert to keep the map in least-recently-used order.
      this.#cache.delete(sql);
      assertAllowed(prepared.facts, sql, context);
    } else {
      prepared = this.prepare(sql, context);
      if (this.#cache.size >= this.#size) {
        this.#cache.delete(this.#cache.keys().next().value as string);
      }
    }
    this.#cache.set(sql, prepared);
    return prepared;
  }

  /** Prepares `sql` without caching it (a stream needs a statement of its own). */
  prepare(sql: string, context: StatementContext): PreparedStatement {
    const facts = checkStatement(sql, context);
    const original = this.#db.prepare(sql);
    if (!original.reader) return { sql, facts, statement: original, names: undefined };
    const names = original.columns().map((c) => c.name);
    const forms = guardedForms(sql, facts, names);
    const statement = forms.length === 0 ? original : this.#firstPreparing(forms, names, sql);
    statement.raw(true);
    if (this.#safeIntegers) statement.safeIntegers(true);
    return { sql, facts, statement, names };
  }

  /** Runs a statement that returns rows and returns them as objects. */
  rows(prepared: PreparedStatement, params: readonly unknown[]): Record<string, unknown>[] {
    const bound = bindable(params);
    const rows = prepared.statement.all(bound) as unknown[][];
    if (prepared.facts.explain) prepared.statement.get(bound);
    return toObjects(prepared.names ?? [], rows);
  }

  /** Runs a statement that returns no rows. */
  run(prepared: PreparedStatement, params: readonly unknown[]): RunResult {
    const { changes, lastInsertRowid } = prepared.statement.run(bindable(params));
    return { changes, insertId: this.exactRowid(lastInsertRowid) };
  }

  /** `last_insert_rowid()` exactly: libsql returns it as a double, inexact past 2^53. */
  exactRowid(reported: number | bigint): bigint {
    if (typeof reported === 'bigint') return reported;
    if (Number.isSafeInteger(reported)) return BigInt(reported);
    this.#lastRowid ??= this.#db.prepare('SELECT last_insert_rowid()').raw(true).safeIntegers(true);
    return (this.#lastRowid.get() as bigint[])[0]!;
  }

  /** Drops every statement. */
  clear(): void {
    this.#cache.clear();
    this.#lastRowid = undefined;
  }

  /** The first guarded form SQLite prepares with the statement's own column names. */
  #firstPreparing(forms: string[], names: readonly string[], sql: string): SqliteStatement {
    for (const form of forms) {
      try {
        const statement = this.#db.prepare(form);
        const columns = statement.columns();
        if (columns.length === names.length && columns.every((c, i) => c.name === names[i])) {
          return statement;
        }
      } catch {
        // Not this form; try the next.
      }
    }
    throw refusal(
      'walguard could not guard the rows this statement returns against text that is not UTF-8 (libsql would abort the process on such a value). Give each RETURNING expression an alias (`expr AS name`) and try again',
      sql,
    );
  }
}
