/**
 * The few places where the repository and the stores must say something differently to
 * SQLite and to PostgreSQL. Everything else they write through Kysely, which compiles it for
 * either engine.
 */
import { type Kysely, PostgresAdapter, sql } from 'kysely';

/** An engine's spelling of what the stores need. */
export interface EngineSql {
  readonly name: 'sqlite' | 'postgres';
  /** The scalar maximum of its arguments: SQLite's `max(a, b)`, PostgreSQL's `greatest(a, b)`. */
  readonly greatest: 'max' | 'greatest';
  /** A case-insensitive LIKE: SQLite's `like` (ASCII), PostgreSQL's `ilike`. */
  readonly like: 'like' | 'ilike';
  /**
   * Whether ORDER BY must say SQLite's NULL order explicitly (first ascending, last
   * descending): PostgreSQL sorts NULLs the other way round by default.
   */
  readonly explicitNulls: boolean;
  /** The column type of an integer that may exceed 2^31 (ids, ms since the epoch). */
  readonly int64: 'integer' | 'bigint';
  /** The column type of a double. */
  readonly double: 'real' | 'double precision';
  /** Which of `tables` exist (in the current schema, on PostgreSQL). */
  existingTables(kysely: Kysely<unknown>, tables: readonly string[]): Promise<string[]>;
  /**
   * The columns of `table` that can never hold NULL: declared NOT NULL, or part of the
   * primary key (SQLite: an INTEGER PRIMARY KEY, the rowid).
   */
  notNullColumns(kysely: Kysely<unknown>, table: string): Promise<Set<string>>;
}

const SQLITE: EngineSql = {
  name: 'sqlite',
  greatest: 'max',
  like: 'like',
  explicitNulls: false,
  int64: 'integer',
  double: 'real',
  async existingTables(kysely, tables) {
    const { rows } = await sql<{ name: string }>`
      SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN (${sql.join(tables)})`.execute(
      kysely,
    );
    return rows.map((r) => r.name);
  },
  async notNullColumns(kysely, table) {
    const { rows } = await sql<{ name: string; notnull: number; pk: number; type: string }>`
      SELECT name, "notnull", pk, type FROM pragma_table_info(${table})`.execute(kysely);
    const keys = rows.filter((r) => r.pk > 0);
    return new Set(
      rows
        .filter(
          (r) =>
            r.notnull === 1 ||
            (keys.length === 1 && r.pk === 1 && r.type.toUpperCase() === 'INTEGER'),
        )
        .map((r) => r.name),
    );
  },
};

const POSTGRES: EngineSql = {
  name: 'postgres',
  greatest: 'greatest',
  like: 'ilike',
  explicitNulls: true,
  int64: 'bigint',
  double: 'double precision',
  async existingTables(kysely, tables) {
    const { rows } = await sql<{ name: string }>`
      SELECT table_name AS name FROM information_schema.tables
      WHERE table_schema = current_schema() AND table_name IN (${sql.join(tables)})`.execute(
      kysely,
    );
    return rows.map((r) => r.name);
  },
  async notNullColumns(kysely, table) {
    // Primary key columns are NOT NULL in PostgreSQL, and say so here.
    const { rows } = await sql<{ name: string }>`
      SELECT column_name AS name FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = ${table} AND is_nullable = 'NO'`.execute(
      kysely,
    );
    return new Set(rows.map((r) => r.name));
  },
};

/** The engine behind a `Kysely` instance (a walguard database's, or a migration's `db`). */
export function engineSql(kysely: Kysely<unknown>): EngineSql {
  return kysely.getExecutor().adapter instanceof PostgresAdapter ? POSTGRES : SQLITE;
}
