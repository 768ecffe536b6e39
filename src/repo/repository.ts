/**
 * `Repository<DB, TB, PK>`: the typed repository base — CRUD, typed filters and keyset
 * pagination for one table of the app's `DB` interface, on top of `db.kysely`.
 *
 * Types come from the `DB` interface the app declares, Kysely-style: rows are
 * `Selectable<DB[TB]>`, new rows `Insertable<DB[TB]>`, patches `Updateable<DB[TB]>`; an unknown
 * table, column or a value of the wrong type is a compile error.
 *
 * Durability: every write is one unit (all or nothing). By default it is critical — the promise
 * resolves with the written row once the COMMIT holding it is durable. With
 * `{ durability: 'deferred' }` it is queued with `db.defer()`: the promise resolves at once with
 * `undefined`, the write is applied within `deferredFlushMs`, and its errors go to the `error`
 * event and the logger (never an unhandled rejection).
 *
 * Caller mistakes detected before any SQL (an oversize value, a value SQLite cannot store, an
 * empty patch, a bad limit or cursor) reject with `WalguardError` code `INVALID_OPTION`, and
 * nothing is queued; for a deferred write the check runs inside `db.defer()`, so the mistake is
 * reported like any deferred failure (logger, `error` event; the returned promise rejects but
 * is already handled). SQL errors (constraints) arrive as `SqliteError` with SQLite's extended
 * code, and the unit changed nothing.
 *
 * Reads (`findById`, `find`, `count`) run on the reader connection and see the last committed
 * state; each call is one statement, so it sees one consistent snapshot.
 */
import {
  type Expression,
  type ExpressionBuilder,
  type Insertable,
  type Kysely,
  type Selectable,
  type SelectQueryBuilder,
  type SqlBool,
  sql,
  type Updateable,
} from 'kysely';
import { WalguardError } from '../errors.js';
import type { Walguard, Writable } from '../walguard.js';
import { type EngineSql, engineSql } from './engine-sql.js';

/** The table names of `DB`. */
export type TableName<DB> = keyof DB & string;

/** The column names of table `TB` of `DB`. */
export type ColumnName<DB, TB extends keyof DB> = keyof Selectable<DB[TB]> & string;

/** A row of `TB` as read. */
export type Row<DB, TB extends keyof DB> = Selectable<DB[TB]>;

/** A row of `TB` as inserted. */
export type NewRow<DB, TB extends keyof DB> = Insertable<DB[TB]>;

/** A patch of `TB`: the columns to change. */
export type RowPatch<DB, TB extends keyof DB> = Updateable<DB[TB]>;

/** A critical write (the default): resolves once durable, with what was written. */
export interface CriticalWrite {
  /** `critical` (default): the promise resolves once the COMMIT holding the write is durable. */
  durability?: 'critical';
}

/** A deferred write: queued and resolved at once; applied within `deferredFlushMs`. */
export interface DeferredWrite {
  /** `deferred`: resolves once queued; durable with the next critical commit, checkpoint or `close()`. */
  durability: 'deferred';
}

/** How durable a write must be before its promise resolves. */
export type WriteOptions = CriticalWrite | DeferredWrite;

/** Conditions on one column; several keys are combined with AND. */
export type Condition<V> = {
  /** Equal (`null` means IS NULL). */
  eq?: V;
  /** Not equal, null-safe (`IS NOT`): rows whose value is NULL match `ne: 5`. */
  ne?: V;
  /** Greater than. */
  gt?: NonNullable<V>;
  /** Greater than or equal. */
  gte?: NonNullable<V>;
  /** Less than. */
  lt?: NonNullable<V>;
  /** Less than or equal. */
  lte?: NonNullable<V>;
  /** One of these values (an empty list matches nothing). */
  in?: readonly NonNullable<V>[];
  /** None of these values (NULL values never match, as in SQL). */
  notIn?: readonly NonNullable<V>[];
  /** `true`: IS NULL; `false`: IS NOT NULL. */
  isNull?: boolean;
} & (NonNullable<V> extends string
  ? {
      /** SQL `LIKE` pattern (`%`, `_`; case-insensitive: ASCII on SQLite, `ILIKE` on PostgreSQL). */
      like?: string;
    }
  : unknown);

/** A filter on a row type: each column is a value (equality; `null`: IS NULL) or a `Condition`. */
export type Filter<R> = { readonly [C in keyof R]?: R[C] | Condition<R[C]> };

/** One term of an order. */
export interface OrderTerm<R> {
  /** The column. */
  column: keyof R & string;
  /** `asc` (default) or `desc`. NULLs sort first ascending and last descending, as in SQLite (on PostgreSQL too). */
  direction?: 'asc' | 'desc';
}

/** An order: a column (ascending), a term, or a list of terms. */
export type OrderBy<R> = (keyof R & string) | OrderTerm<R> | readonly OrderTerm<R>[];

/** Options of `find()`. */
export interface FindOptions<R> {
  /** Which rows; all when omitted. */
  where?: Filter<R>;
  /** Row order; the primary key is appended as the final tie-breaker. Default: primary key ascending. */
  orderBy?: OrderBy<R>;
  /** Most rows to return, integer >= 1. Default: all. With a limit the page carries a `next` cursor when more rows follow. */
  limit?: number;
  /** A `next` cursor from a previous page of the same query (same `orderBy`): return the rows after it. */
  after?: string;
}

/** A page of rows. */
export interface Page<R> {
  /** The rows, in order. */
  rows: R[];
  /** Cursor for the next page (pass as `after`), or `undefined` when this page is the last. */
  next: string | undefined;
}

/** Options of `upsert()`. */
export type UpsertOptions<R> = WriteOptions & {
  /** The columns of the unique constraint to match on. Default: the primary key. */
  conflict?: readonly (keyof R & string)[];
  /** The columns to overwrite on conflict. Default: every column given except the conflict columns. */
  update?: readonly (keyof R & string)[];
};

/** Options of a repository. */
export interface RepositoryOptions<PK extends string> {
  /** The primary key column (one column). Default `id`. */
  primaryKey?: PK;
  /** Largest string or blob accepted in one column, in bytes (UTF-8 for strings), integer >= 1. Checked before any SQL. Default 4 MiB (the default `maxBatchBytes`). */
  maxValueBytes?: number;
}

/** Default `maxValueBytes`: 4 MiB. */
export const DEFAULT_MAX_VALUE_BYTES = 4 * 1024 * 1024;

/** How `Repository` sees any table internally; the public types stay exact. */
type LooseDB = Record<string, Record<string, unknown>>;
type LooseSelect = SelectQueryBuilder<LooseDB, string, Record<string, unknown>>;
type LooseExpressionBuilder = ExpressionBuilder<LooseDB, string>;

/** An order term with its direction resolved. */
interface ResolvedOrder {
  column: string;
  desc: boolean;
}

/** `'id'` when the table has an `id` column, otherwise no default: pass `primaryKey`. */
type DefaultKey<DB, TB extends keyof DB> = 'id' extends ColumnName<DB, TB> ? 'id' : never;

export class Repository<
  DB,
  TB extends TableName<DB>,
  PK extends ColumnName<DB, TB> = DefaultKey<DB, TB>,
> {
  /** The table. */
  readonly table: TB;
  /** The primary key column. */
  readonly primaryKey: PK;
  /** Largest string or blob accepted in one column, in bytes. */
  readonly maxValueBytes: number;
  readonly #db: Walguard<LooseDB>;
  /** `table` and `primaryKey` as plain strings, for the internal, loosely typed queries. */
  readonly #table: string;
  readonly #key: string;
  /** The table's NOT NULL columns, read once, on the first keyset page (see `keysetExpression`). */
  #notNull: Promise<ReadonlySet<string>> | undefined;
  /** The engine's spelling of what differs (see `engine-sql.ts`), looked up on first use. */
  #engine: EngineSql | undefined;

  /**
   * A repository for `table` of `db`. `options.primaryKey` is required when the table has no
   * `id` column. Builds nothing and checks nothing in the database: the table must exist by
   * the first call (run migrations first).
   */
  constructor(
    db: Walguard<DB>,
    table: TB,
    ...[options = {}]: 'id' extends ColumnName<DB, TB>
      ? [options?: RepositoryOptions<PK>]
      : [options: RepositoryOptions<PK> & { primaryKey: PK }]
  ) {
    const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1) {
      throw invalid(`Expected \`maxValueBytes\` to be an integer >= 1, got ${show(maxValueBytes)}`);
    }
    if (typeof table !== 'string' || table.length === 0) {
      throw invalid(`Expected \`table\` to be a table name, got ${show(table)}`);
    }
    this.table = table;
    this.primaryKey = (options.primaryKey ?? 'id') as PK;
    this.maxValueBytes = maxValueBytes;
    this.#db = db as unknown as Walguard<LooseDB>;
    this.#table = this.table;
    this.#key = this.primaryKey;
  }

  /** The engine's spelling of what differs; the constructor touches nothing of `db`. */
  get #sql(): EngineSql {
    this.#engine ??= engineSql(this.#db.kysely as Kysely<unknown>);
    return this.#engine;
  }

  /** Inserts one row as one unit; critical: resolves with the row as stored (defaults applied). */
  insert(row: NewRow<DB, TB>, options?: CriticalWrite): Promise<Row<DB, TB>>;
  insert(row: NewRow<DB, TB>, options: DeferredWrite): Promise<void>;
  insert(row: NewRow<DB, TB>, options?: WriteOptions): Promise<Row<DB, TB> | undefined>;
  insert(row: NewRow<DB, TB>, options?: WriteOptions): Promise<unknown> {
    const build = (k: Kysely<LooseDB>) => {
      this.#checkRow(row, 'row');
      return k.insertInto(this.#table).values(row as Record<string, unknown>);
    };
    return this.#run(options, build, async () => {
      const result = await this.#db.write((k) => build(k).returningAll());
      return result.rows[0];
    });
  }

  /**
   * Inserts many rows as ONE unit (one savepoint): all of them or, on any error, none. Each row
   * is its own statement inside the unit (so each gets its own column defaults).
   */
  insertMany(rows: readonly NewRow<DB, TB>[], options?: CriticalWrite): Promise<Row<DB, TB>[]>;
  insertMany(rows: readonly NewRow<DB, TB>[], options: DeferredWrite): Promise<void>;
  insertMany(
    rows: readonly NewRow<DB, TB>[],
    options?: WriteOptions,
  ): Promise<Row<DB, TB>[] | undefined>;
  insertMany(rows: readonly NewRow<DB, TB>[], options?: WriteOptions): Promise<unknown> {
    const build = (k: Kysely<LooseDB>) => {
      if (!Array.isArray(rows)) {
        throw invalid(`Expected \`rows\` to be an array, got ${show(rows)}`);
      }
      return rows.map((row, i) => {
        this.#checkRow(row, `rows[${i}]`);
        return k.insertInto(this.#table).values(row as Record<string, unknown>);
      });
    };
    if (Array.isArray(rows) && rows.length === 0) {
      return this.#run(
        options,
        () => [],
        async () => [],
      );
    }
    return this.#run(options, build, async () => {
      const results = await this.#db.write((k) => build(k).map((q) => q.returningAll()));
      return results.map((r) => r.rows[0]);
    });
  }

  /** Changes the row with this primary key; critical: resolves with the new row, or `undefined` when there is none. */
  update(
    id: Row<DB, TB>[PK],
    patch: RowPatch<DB, TB>,
    options?: CriticalWrite,
  ): Promise<Row<DB, TB> | undefined>;
  update(id: Row<DB, TB>[PK], patch: RowPatch<DB, TB>, options: DeferredWrite): Promise<void>;
  update(
    id: Row<DB, TB>[PK],
    patch: RowPatch<DB, TB>,
    options?: WriteOptions,
  ): Promise<Row<DB, TB> | undefined>;
  update(id: Row<DB, TB>[PK], patch: RowPatch<DB, TB>, options?: WriteOptions): Promise<unknown> {
    const build = (k: Kysely<LooseDB>) => {
      this.#checkPatch(patch);
      return k
        .updateTable(this.#table)
        .set(patch as Record<string, unknown>)
        .where(this.#key, '=', id as unknown);
    };
    return this.#run(options, build, async () => {
      const result = await this.#db.write((k) => build(k).returningAll());
      return result.rows[0];
    });
  }

  /** Changes every row that matches `where` (a non-empty filter); critical: resolves with the number of rows changed. */
  updateWhere(
    where: Filter<Row<DB, TB>>,
    patch: RowPatch<DB, TB>,
    options?: CriticalWrite,
  ): Promise<number>;
  updateWhere(
    where: Filter<Row<DB, TB>>,
    patch: RowPatch<DB, TB>,
    options: DeferredWrite,
  ): Promise<void>;
  updateWhere(
    where: Filter<Row<DB, TB>>,
    patch: RowPatch<DB, TB>,
    options?: WriteOptions,
  ): Promise<number | undefined>;
  updateWhere(
    where: Filter<Row<DB, TB>>,
    patch: RowPatch<DB, TB>,
    options?: WriteOptions,
  ): Promise<unknown> {
    const build = (k: Kysely<LooseDB>) => {
      this.#checkPatch(patch);
      requireFilter(where, 'updateWhere');
      return k
        .updateTable(this.#table)
        .set(patch as Record<string, unknown>)
        .where((eb) => filterExpression(eb, where, undefined, this.#sql));
    };
    return this.#run(options, build, async () => {
      const result = await this.#db.write(build);
      return Number(result.numAffectedRows ?? 0n);
    });
  }

  /**
   * Inserts the row, or — when it collides with an existing row on `conflict` (default: the
   * primary key) — overwrites that row's `update` columns (default: every column given except
   * the conflict columns). One statement, one unit; critical: resolves with the stored row.
   */
  upsert(
    row: NewRow<DB, TB>,
    options?: UpsertOptions<Row<DB, TB>> & CriticalWrite,
  ): Promise<Row<DB, TB>>;
  upsert(row: NewRow<DB, TB>, options: UpsertOptions<Row<DB, TB>> & DeferredWrite): Promise<void>;
  upsert(
    row: NewRow<DB, TB>,
    options?: UpsertOptions<Row<DB, TB>>,
  ): Promise<Row<DB, TB> | undefined>;
  upsert(row: NewRow<DB, TB>, options?: UpsertOptions<Row<DB, TB>>): Promise<unknown> {
    const build = (k: Kysely<LooseDB>) => {
      this.#checkRow(row, 'row');
      const given = Object.keys(row).filter(
        (c) => (row as Record<string, unknown>)[c] !== undefined,
      );
      const conflict: readonly string[] = options?.conflict ?? [this.#key];
      if (conflict.length === 0) {
        throw invalid('Expected `conflict` to name at least one column of a unique constraint');
      }
      let update: readonly string[] = options?.update ?? given.filter((c) => !conflict.includes(c));
      // Nothing to overwrite: a no-op update still makes RETURNING yield the existing row.
      if (update.length === 0) update = [conflict[0]!];
      return k
        .insertInto(this.#table)
        .values(row as Record<string, unknown>)
        .onConflict((oc) =>
          oc
            .columns(conflict as string[])
            .doUpdateSet(
              Object.fromEntries(
                update.map((c) => [c, (eb: LooseExpressionBuilder) => eb.ref(`excluded.${c}`)]),
              ),
            ),
        );
    };
    return this.#run(options, build, async () => {
      const result = await this.#db.write((k) => build(k).returningAll());
      return result.rows[0];
    });
  }

  /** Deletes the row with this primary key; critical: resolves with `true` when a row was deleted. */
  delete(id: Row<DB, TB>[PK], options?: CriticalWrite): Promise<boolean>;
  delete(id: Row<DB, TB>[PK], options: DeferredWrite): Promise<void>;
  delete(id: Row<DB, TB>[PK], options?: WriteOptions): Promise<boolean | undefined>;
  delete(id: Row<DB, TB>[PK], options?: WriteOptions): Promise<unknown> {
    const build = (k: Kysely<LooseDB>) =>
      k.deleteFrom(this.#table).where(this.#key, '=', id as unknown);
    return this.#run(options, build, async () => {
      const result = await this.#db.write(build);
      return (result.numAffectedRows ?? 0n) > 0n;
    });
  }

  /** Deletes every row that matches `where` (a non-empty filter); critical: resolves with the number deleted. */
  deleteWhere(where: Filter<Row<DB, TB>>, options?: CriticalWrite): Promise<number>;
  deleteWhere(where: Filter<Row<DB, TB>>, options: DeferredWrite): Promise<void>;
  deleteWhere(where: Filter<Row<DB, TB>>, options?: WriteOptions): Promise<number | undefined>;
  deleteWhere(where: Filter<Row<DB, TB>>, options?: WriteOptions): Promise<unknown> {
    const build = (k: Kysely<LooseDB>) => {
      requireFilter(where, 'deleteWhere');
      return k
        .deleteFrom(this.#table)
        .where((eb) => filterExpression(eb, where, undefined, this.#sql));
    };
    return this.#run(options, build, async () => {
      const result = await this.#db.write(build);
      return Number(result.numAffectedRows ?? 0n);
    });
  }

  /**
   * Runs a write at the durability asked for. Deferred: `db.defer(build)`, whose promise is
   * returned as is — it never rejects unhandled, so callers may ignore it; `build` runs (and
   * checks its input) inside `defer`, so a bad input is reported like any deferred failure.
   * Critical: `critical()`.
   */
  #run(
    options: { durability?: string } | undefined,
    build: (k: Kysely<LooseDB>) => Writable | readonly Writable[],
    critical: () => Promise<unknown>,
  ): Promise<unknown> {
    let deferred: boolean;
    try {
      deferred = isDeferred(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return deferred ? this.#db.defer(build) : critical();
  }

  /** The row with this primary key, or `undefined`. */
  async findById(id: Row<DB, TB>[PK]): Promise<Row<DB, TB> | undefined> {
    const row = await this.#db.kysely
      .selectFrom(this.#table)
      .selectAll()
      .where(this.#key, '=', id as unknown)
      .executeTakeFirst();
    return row as Row<DB, TB> | undefined;
  }

  /**
   * The rows matching `where`, in `orderBy` order (the primary key breaks ties), at most
   * `limit` of them, after the `after` cursor. Keyset pagination: a page costs the same
   * whatever its depth, and rows inserted or deleted elsewhere never shift later pages.
   */
  async find(options: FindOptions<Row<DB, TB>> = {}): Promise<Page<Row<DB, TB>>> {
    const order = this.#order(options.orderBy);
    const limit = options.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
      throw invalid(`Expected \`limit\` to be an integer >= 1, got ${show(limit)}`);
    }
    let query: LooseSelect = this.#db.kysely.selectFrom(this.#table).selectAll();
    const where = options.where;
    if (where !== undefined && Object.keys(where).length > 0) {
      query = query.where((eb) => filterExpression(eb, where, undefined, this.#sql));
    }
    const explicitNulls = this.#sql.explicitNulls;
    const notNull =
      options.after !== undefined || explicitNulls ? await this.#notNullColumns() : undefined;
    if (options.after !== undefined) {
      const values = decodeCursor(options.after, order);
      query = query.where((eb) => keysetExpression(eb, order, values, notNull!));
    }
    for (const { column, desc } of order) {
      // SQLite's NULL order, said explicitly where the engine differs (only for columns that
      // can hold NULL, so that an index on a NOT NULL column still serves the order).
      query =
        explicitNulls && !notNull!.has(column)
          ? query.orderBy(column, (ob) => (desc ? ob.desc().nullsLast() : ob.asc().nullsFirst()))
          : query.orderBy(column, desc ? 'desc' : 'asc');
    }
    if (limit !== undefined) query = query.limit(limit + 1);
    const rows = await query.execute();
    let next: string | undefined;
    if (limit !== undefined && rows.length > limit) {
      rows.length = limit;
      next = encodeCursor(order, rows[limit - 1]!);
    }
    return { rows: rows as Row<DB, TB>[], next };
  }

  /** How many rows match `where` (all rows when omitted). */
  async count(where?: Filter<Row<DB, TB>>): Promise<number> {
    let query = this.#db.kysely.selectFrom(this.#table).select((eb) => eb.fn.countAll().as('n'));
    if (where !== undefined && Object.keys(where).length > 0) {
      query = query.where((eb) => filterExpression(eb, where, undefined, this.#sql));
    }
    const row = await query.executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * The columns that can never hold NULL: declared NOT NULL, or the INTEGER PRIMARY KEY (the
   * rowid). Read once per repository; a later migration that makes an order column nullable
   * needs a new repository (the stores open theirs after migrating).
   */
  #notNullColumns(): Promise<ReadonlySet<string>> {
    this.#notNull ??= this.#sql.notNullColumns(this.#db.kysely as Kysely<unknown>, this.#table);
    this.#notNull.catch(() => {
      this.#notNull = undefined;
    });
    return this.#notNull;
  }

  /** The order with directions resolved and the primary key appended as tie-breaker. */
  #order(orderBy: OrderBy<Row<DB, TB>> | undefined): ResolvedOrder[] {
    const terms: readonly { column: string; direction?: string }[] =
      orderBy === undefined
        ? []
        : typeof orderBy === 'string'
          ? [{ column: orderBy }]
          : Array.isArray(orderBy)
            ? (orderBy as readonly OrderTerm<Row<DB, TB>>[])
            : [orderBy as OrderTerm<Row<DB, TB>>];
    const order: ResolvedOrder[] = [];
    for (const term of terms) {
      if (typeof term?.column !== 'string') {
        throw invalid(`Expected each \`orderBy\` term to name a column, got ${show(term)}`);
      }
      if (term.direction !== undefined && term.direction !== 'asc' && term.direction !== 'desc') {
        throw invalid(
          `Expected \`orderBy.direction\` to be 'asc' or 'desc', got ${show(term.direction)}`,
        );
      }
      if (!order.some((o) => o.column === term.column)) {
        order.push({ column: term.column, desc: term.direction === 'desc' });
      }
    }
    if (!order.some((o) => o.column === this.primaryKey)) {
      order.push({ column: this.primaryKey, desc: false });
    }
    return order;
  }

  /** Checks every value of a row before any SQL. */
  #checkRow(row: unknown, what: string): void {
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      throw invalid(`Expected \`${what}\` to be an object of column values, got ${show(row)}`);
    }
    for (const [column, value] of Object.entries(row)) this.#checkValue(column, value);
  }

  #checkPatch(patch: unknown): void {
    this.#checkRow(patch, 'patch');
    const columns = Object.entries(patch as object).filter(([, v]) => v !== undefined);
    if (columns.length === 0) {
      throw invalid('Expected `patch` to set at least one column; nothing was written');
    }
  }

  /** A value SQLite can store, no larger than `maxValueBytes`. */
  #checkValue(column: string, value: unknown): void {
    const limit = this.maxValueBytes;
    let bytes: number;
    if (typeof value === 'string') {
      // UTF-8 needs at most 3 bytes per UTF-16 code unit: skip the count for short strings.
      if (value.length * 3 <= limit) return;
      bytes = Buffer.byteLength(value, 'utf8');
    } else if (ArrayBuffer.isView(value)) {
      bytes = value.byteLength;
    } else if (
      value === null ||
      value === undefined ||
      typeof value === 'number' ||
      typeof value === 'bigint' ||
      typeof value === 'boolean' ||
      isExpression(value) ||
      // PostgreSQL stores arrays (`real[]`, `text[]`, …); SQLite cannot.
      (Array.isArray(value) && this.#sql.name === 'postgres')
    ) {
      return;
    } else {
      throw invalid(
        `Expected \`${this.table}.${column}\` to be a string, number, bigint, boolean, null or Uint8Array (or, on PostgreSQL, an array), got ${show(value)}; nothing was written`,
      );
    }
    if (bytes > limit) {
      throw invalid(
        `Expected \`${this.table}.${column}\` to be at most ${limit} bytes (maxValueBytes), got ${bytes} bytes; nothing was written`,
        { table: this.table, column, bytes, limit },
      );
    }
  }
}

/** Throws `INVALID_OPTION` when `text` is longer than `limit` UTF-8 bytes. */
export function checkBytes(text: string, limit: number, what: string, option: string): void {
  if (text.length * 3 <= limit) return;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limit) {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected \`${what}\` to be at most ${limit} bytes (${option}), got ${bytes} bytes; nothing was written`,
      { details: { what, bytes, limit } },
    );
  }
}

/** Throws `INVALID_OPTION` unless the tables exist. */
export async function requireTables<DB>(
  db: Walguard<DB>,
  tables: readonly string[],
): Promise<void> {
  const kysely = db.kysely as unknown as Kysely<unknown>;
  const existing = await engineSql(kysely).existingTables(kysely, tables);
  const missing = tables.filter((t) => !existing.includes(t));
  if (missing.length > 0) {
    throw invalid(
      `The table(s) ${missing.join(', ')} do not exist: run the store's migrations first (runMigrations(db, [conversationMigrations(), memoryMigrations({ dimensions })]))`,
    );
  }
}

/** True for `{ durability: 'deferred' }`; rejects unknown durability values. */
function isDeferred(options: { durability?: string } | undefined): boolean {
  const durability = options?.durability;
  if (durability === undefined || durability === 'critical') return false;
  if (durability === 'deferred') return true;
  throw invalid(`Expected \`durability\` to be 'critical' or 'deferred', got ${show(durability)}`);
}

function requireFilter(where: unknown, method: string): void {
  if (typeof where !== 'object' || where === null || Object.keys(where).length === 0) {
    throw invalid(
      `Expected \`${method}\` to get a non-empty filter (a filter that matches every row is refused); nothing was written`,
    );
  }
}

/** A Kysely expression (raw SQL, a subquery): passed through as SQL, not a value. */
function isExpression(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { toOperationNode?: unknown }).toOperationNode === 'function'
  );
}

/** A condition object (a plain object), as opposed to a value. */
function isCondition(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const CONDITION_KEYS = new Set([
  'eq',
  'ne',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'notIn',
  'isNull',
  'like',
]);

/**
 * The WHERE expression of a `Filter` (the AND of every column's conditions), for a query of
 * your own: `.where((eb) => whereFilter(eb, { kind: 'fact' }, 'm'))`. `alias` prefixes each
 * column (`m.kind`); `db` (your `Kysely`, e.g. `db.kysely`) tells the engine, for `like`
 * (SQLite's LIKE, PostgreSQL's ILIKE). Throws `INVALID_OPTION` on an unknown condition.
 */
export function whereFilter<EB>(
  eb: EB,
  filter: object,
  alias?: string,
  db?: { getExecutor(): unknown },
): Expression<SqlBool> {
  const engine = db === undefined ? undefined : engineSql(db as Kysely<unknown>);
  return filterExpression(eb as unknown as LooseExpressionBuilder, filter, alias, engine);
}

/** Builds the WHERE expression of a filter (AND of every column's conditions). */
function filterExpression(
  eb: LooseExpressionBuilder,
  filter: object,
  alias?: string,
  engine?: EngineSql,
): Expression<SqlBool> {
  const parts: Expression<SqlBool>[] = [];
  for (const [name, spec] of Object.entries(filter)) {
    const column = alias === undefined ? name : `${alias}.${name}`;
    if (spec === undefined) continue;
    if (!isCondition(spec)) {
      parts.push(spec === null ? eb(column, 'is', null) : eb(column, '=', spec));
      continue;
    }
    for (const [op, value] of Object.entries(spec)) {
      if (value === undefined) continue;
      if (!CONDITION_KEYS.has(op)) {
        throw invalid(
          `Unknown condition \`${op}\` on \`${column}\`; expected one of ${[...CONDITION_KEYS].join(', ')}`,
        );
      }
      parts.push(conditionExpression(eb, column, op, value, engine?.like ?? 'like'));
    }
  }
  return eb.and(parts);
}

function conditionExpression(
  eb: LooseExpressionBuilder,
  column: string,
  op: string,
  value: unknown,
  like: 'like' | 'ilike',
): Expression<SqlBool> {
  switch (op) {
    case 'eq':
      return value === null ? eb(column, 'is', null) : eb(column, '=', value);
    case 'ne':
      // Null-safe on both engines (SQLite's `IS NOT` with a value is not PostgreSQL).
      return eb(column, 'is distinct from', value);
    case 'gt':
      return eb(column, '>', value);
    case 'gte':
      return eb(column, '>=', value);
    case 'lt':
      return eb(column, '<', value);
    case 'lte':
      return eb(column, '<=', value);
    case 'like':
      return eb(column, like, value as string);
    case 'isNull':
      return eb(column, value ? 'is' : 'is not', null);
    default: {
      if (!Array.isArray(value)) {
        throw invalid(`Expected \`${column}.${op}\` to be an array, got ${show(value)}`);
      }
      // `x IN ()` is false and `x NOT IN ()` true; PostgreSQL refuses the empty list itself.
      if (value.length === 0) return sql.lit(op !== 'in');
      return eb(column, op === 'in' ? 'in' : 'not in', value);
    }
  }
}

/**
 * The keyset condition "the row comes after `values` in `order`": for some i, every column
 * before i equals its cursor value and column i is strictly after its cursor value. NULLs
 * sort first ascending and last descending (SQLite), and are handled exactly; a column known
 * to be NOT NULL needs no NULL branch.
 *
 * SQLite cannot use an index range for that OR, so a redundant bound on the first column is
 * ANDed (`c0 >= v0` ascending, `c0 <= v0` descending when c0 is NOT NULL): measured on 100k
 * messages of one conversation, a page deep in the asc order took 10.5 ms without it (the index
 * scanned from the conversation's first message) and 0.08 ms with it.
 */
function keysetExpression(
  eb: LooseExpressionBuilder,
  order: readonly ResolvedOrder[],
  values: readonly unknown[],
  notNull: ReadonlySet<string>,
): Expression<SqlBool> {
  const branches: Expression<SqlBool>[] = [];
  for (let i = 0; i < order.length; i++) {
    const parts: Expression<SqlBool>[] = [];
    for (let j = 0; j < i; j++) {
      const v = values[j];
      const c = order[j]!.column;
      parts.push(v === null ? eb(c, 'is', null) : eb(c, '=', v));
    }
    const { column, desc } = order[i]!;
    const v = values[i];
    if (!desc) {
      parts.push(v === null ? eb(column, 'is not', null) : eb(column, '>', v));
    } else if (v === null) {
      // Nothing sorts after NULL in a descending order except other columns' ties.
      parts.push(sql.lit(false));
    } else if (notNull.has(column)) {
      parts.push(eb(column, '<', v));
    } else {
      parts.push(eb.or([eb(column, '<', v), eb(column, 'is', null)]));
    }
    branches.push(eb.and(parts));
  }
  const first = order[0]!;
  const v0 = values[0];
  if (v0 !== null && (!first.desc || notNull.has(first.column))) {
    return eb.and([eb(first.column, first.desc ? '<=' : '>=', v0), eb.or(branches)]);
  }
  return eb.or(branches);
}

/** Cursor format version; a cursor of another version is refused. */
const CURSOR_VERSION = 1;

/** A cursor: the order it belongs to and the last row's values of its columns. */
function encodeCursor(order: readonly ResolvedOrder[], row: Record<string, unknown>): string {
  const payload = {
    v: CURSOR_VERSION,
    o: order.map((t) => (t.desc ? `-${t.column}` : t.column)),
    k: order.map((t) => encodeValue(row[t.column])),
  };
  return Buffer.from(JSON.stringify(payload)).toString('base64url');
}

function decodeCursor(cursor: string, order: readonly ResolvedOrder[]): unknown[] {
  let payload: { v?: unknown; o?: unknown; k?: unknown };
  try {
    payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid(
      `Expected \`after\` to be a cursor returned as \`next\` by find(), got ${show(cursor)}`,
    );
  }
  const expected = order.map((t) => (t.desc ? `-${t.column}` : t.column));
  if (
    payload?.v !== CURSOR_VERSION ||
    !Array.isArray(payload.o) ||
    !Array.isArray(payload.k) ||
    payload.k.length !== payload.o.length
  ) {
    throw invalid(
      `Expected \`after\` to be a cursor returned as \`next\` by find(), got ${show(cursor)}`,
    );
  }
  if (payload.o.join(',') !== expected.join(',')) {
    throw invalid(
      `The cursor in \`after\` belongs to the order (${payload.o.join(', ')}), not (${expected.join(', ')}): pass the same \`orderBy\` as for the page that returned it`,
    );
  }
  return payload.k.map(decodeValue);
}

/** JSON form of a column value: bigints and blobs are tagged. */
function encodeValue(value: unknown): unknown {
  if (typeof value === 'bigint') return { b: value.toString() };
  if (ArrayBuffer.isView(value)) {
    return { x: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex') };
  }
  return value ?? null;
}

function decodeValue(value: unknown): unknown {
  if (typeof value === 'object' && value !== null) {
    const tagged = value as { b?: unknown; x?: unknown };
    if (typeof tagged.b === 'string') return BigInt(tagged.b);
    if (typeof tagged.x === 'string') return Buffer.from(tagged.x, 'hex');
    throw invalid('Expected `after` to be a cursor returned as `next` by find()');
  }
  return value;
}

/** A caller mistake detected before any SQL. */
function invalid(message: string, details?: Record<string, unknown>): WalguardError {
  return new WalguardError('INVALID_OPTION', message, details === undefined ? {} : { details });
}

/** Shows a given value in an error message (short). */
function show(value: unknown): string {
  let text: string;
  try {
    text =
      typeof value === 'string'
        ? value
        : typeof value === 'bigint'
          ? `${value}n`
          : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  if (text.length > 60) text = `${text.slice(0, 57)}...`;
  return `\`${text}\` (${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value})`;
}
