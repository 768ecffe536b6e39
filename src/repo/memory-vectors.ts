/**
 * How `MemoryStore` stores and compares embeddings, per engine:
 *
 * - libSQL: `F32_BLOB(n)` (little-endian float32 bytes), a DiskANN index
 *   (`libsql_vector_idx`), `vector_top_k` for candidates, `vector_distance_cos` for distance.
 * - PostgreSQL with pgvector (when `CREATE EXTENSION vector` succeeds at migration): a
 *   `vector(n)` column, an HNSW index (`vector_cosine_ops`), `<=>` for the cosine distance.
 * - PostgreSQL without pgvector: a `real[]` column checked to n elements, and an exact
 *   cosine distance in SQL (`walguard_cosine_distance`, created by the migration); no index,
 *   so every search scans (exact, linear in the table).
 *
 * The kind is read from the table at `MemoryStore.open()`, so a database migrated where
 * pgvector was missing keeps `real[]` until it is migrated again.
 */
import { type Expression, type Kysely, type RawBuilder, sql } from 'kysely';

/** Which storage the memories table uses. */
export type VectorKind = 'libsql' | 'pgvector' | 'real[]';

/** An engine's vectors. */
export interface VectorSql {
  readonly kind: VectorKind;
  /** Whether an approximate index can give candidates (`candidates`). */
  readonly indexed: boolean;
  /** The embedding as the query parameter / stored value. */
  encode(vector: Float32Array): unknown;
  /** A stored value (or `null`) back to a fresh `Float32Array`. */
  decode(value: unknown): Float32Array | null;
  /** The cosine distance (1 − cos θ, 0..2) between `column` and `query` (encoded). */
  distance(column: Expression<unknown> | RawBuilder<unknown>, query: unknown): RawBuilder<number>;
  /** A table expression of candidate ids (column `id`) nearest to `query`, from the index. */
  candidates(query: unknown, n: number): RawBuilder<{ id: number }>;
}

/** The vector index's name (both engines). */
export const VECTOR_INDEX = 'memories_embedding_idx';

const LIBSQL: VectorSql = {
  kind: 'libsql',
  indexed: true,
  encode: (v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength),
  decode(value) {
    if (value === null || value === undefined) return null;
    const bytes = value as Uint8Array;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const out = new Float32Array(bytes.byteLength >>> 2);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  },
  distance: (column, q) => sql<number>`vector_distance_cos(${column}, ${q})`,
  candidates: (q, n) => sql<{ id: number }>`vector_top_k(${VECTOR_INDEX}, ${q}, ${n})`,
};

const PGVECTOR: VectorSql = {
  kind: 'pgvector',
  indexed: true,
  encode: (v) => `[${Array.from(v).join(',')}]`,
  decode: (value) =>
    value === null || value === undefined
      ? null
      : Float32Array.from(JSON.parse(String(value)) as number[]),
  distance: (column, q) => sql<number>`(${column} <=> ${q}::vector)`,
  candidates: (q, n) =>
    sql<{ id: number }>`(SELECT id FROM memories WHERE embedding IS NOT NULL
      ORDER BY embedding <=> ${q}::vector LIMIT ${n})`,
};

const REAL_ARRAY: VectorSql = {
  kind: 'real[]',
  indexed: false,
  encode: (v) => Array.from(v),
  decode: (value) =>
    value === null || value === undefined ? null : Float32Array.from(value as number[]),
  distance: (column, q) => sql<number>`walguard_cosine_distance(${column}, ${q}::real[])`,
  candidates: () => {
    throw new Error('real[] embeddings have no index: search scans');
  },
};

/** The vectors of a kind. */
export function vectorSql(kind: VectorKind): VectorSql {
  return kind === 'libsql' ? LIBSQL : kind === 'pgvector' ? PGVECTOR : REAL_ARRAY;
}

/**
 * The embedding column's declared type and the vector kind behind it (`F32_BLOB(16)`,
 * `vector(16)`, `real[16]` — the last from its dimension check), or undefined without a table.
 */
export async function declaredEmbedding(
  db: Kysely<unknown>,
  engine: 'sqlite' | 'postgres',
): Promise<{ declared: string; kind: VectorKind } | undefined> {
  if (engine === 'sqlite') {
    const { rows } = await sql<{ type: string }>`
      SELECT type FROM pragma_table_info('memories') WHERE name = 'embedding'`.execute(db);
    const type = rows[0]?.type;
    return type === undefined
      ? undefined
      : { declared: type.replace(/\s/g, '').toUpperCase(), kind: 'libsql' };
  }
  const { rows } = await sql<{ type: string; checks: string | null }>`
    SELECT format_type(a.atttypid, a.atttypmod) AS type,
      (SELECT string_agg(pg_get_constraintdef(c.oid), ' ') FROM pg_constraint c
        WHERE c.conrelid = a.attrelid AND c.contype = 'c') AS checks
    FROM pg_attribute a
    WHERE a.attrelid = to_regclass('memories') AND a.attname = 'embedding'`.execute(db);
  const row = rows[0];
  if (row === undefined) return undefined;
  if (row.type.startsWith('vector')) return { declared: row.type, kind: 'pgvector' };
  const n = /cardinality\(embedding\) = (\d+)/.exec(row.checks ?? '')?.[1];
  return { declared: `real[${n ?? ''}]`, kind: 'real[]' };
}

/**
 * Creates the embedding column's vector machinery in a PostgreSQL migration: pgvector and its
 * index when the extension can be created, else the exact cosine function over `real[]`.
 * Returns the column type to declare.
 */
export async function createPostgresVectors(
  db: Kysely<unknown>,
  dimensions: number,
): Promise<{ type: RawBuilder<unknown>; kind: VectorKind }> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*) AS n FROM pg_available_extensions WHERE name = 'vector'`.execute(db);
  if (Number(rows[0]?.n) > 0) {
    // Creating an extension needs a privilege the app's role may lack: try it under a
    // savepoint, so that a refusal leaves the migration's transaction usable.
    await sql`SAVEPOINT memories_vector`.execute(db);
    try {
      await sql`CREATE EXTENSION IF NOT EXISTS vector`.execute(db);
      await sql`RELEASE SAVEPOINT memories_vector`.execute(db);
      return { type: sql.raw(`vector(${dimensions})`), kind: 'pgvector' };
    } catch {
      await sql`ROLLBACK TO SAVEPOINT memories_vector`.execute(db);
      await sql`RELEASE SAVEPOINT memories_vector`.execute(db);
    }
  }
  await sql`
    CREATE OR REPLACE FUNCTION walguard_cosine_distance(a real[], b real[])
    RETURNS double precision LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
      SELECT 1 - sum(x::float8 * y::float8)
        / (sqrt(sum(x::float8 * x::float8)) * sqrt(sum(y::float8 * y::float8)))
      FROM unnest(a, b) AS t(x, y)
    $$`.execute(db);
  return { type: sql.raw('real[]'), kind: 'real[]' };
}
