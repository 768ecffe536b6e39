/**
 * `MemoryStore`: an AI companion's long-term memories, searched by meaning with libSQL's native
 * vectors.
 *
 * Table (created by `memoryMigrations({ dimensions })`):
 * `memories(id INTEGER PK AUTOINCREMENT, kind, content, importance REAL 0..1,
 * embedding F32_BLOB(dimensions), created_at, last_accessed_at, access_count)`, with a DiskANN
 * vector index `memories_embedding_idx` (`libsql_vector_idx(embedding, 'metric=cosine')`) and an
 * index on `(kind, created_at)`. Times are ms since the epoch.
 *
 * On PostgreSQL (see `memory-vectors.ts`) the embedding is a pgvector `vector(dimensions)`
 * with an HNSW index when the server has pgvector (`CREATE EXTENSION vector` succeeds at
 * migration), and otherwise a `real[]` searched by an exact cosine scan in SQL — the same
 * results, at a cost linear in the table.
 *
 * Search. A store holding fewer than `scanBelow` embedded memories (default 2,000) scans them:
 * exact, and faster than the index at that size (measured: 1,000 memories of 768 dimensions,
 * 3.2 ms scan vs 17 ms index). It also sidesteps an engine behaviour: libSQL's DiskANN often
 * misses a row whose embedding was UPDATEd (or whose id was reused) — its neighbours keep a
 * stale copy of the old vector — see `docs/repositories.md`. Above that size `search()` asks
 * the vector index for nearest neighbours (`vector_top_k`, which returns
 * rowids = memory ids), joins the rows, applies the filter and orders by the exact cosine
 * distance (`vector_distance_cos`, 1 − cos θ, 0..2). The index is approximate (DiskANN) and
 * knows nothing of the filter, so a filtered search asks it for max(4k, 32) candidates and
 * widens (×4, at most 3 rounds) until `k` rows pass the filter; when that fails — a selective
 * filter, or fewer than `k` matching memories — or the index would have to return half the
 * table, it scans the filtered rows instead (exact). `exact: true` always scans: exact results,
 * cost linear in the table.
 *
 * Threads. Every read of a search runs on a reader thread (`readOnReaderThread`), never on
 * the main thread: a vector search or a scan of thousands of embeddings takes milliseconds
 * (hundreds at 100k memories), and the app's event loop must not wait for it.
 *
 * Deferral. Recording an access (`last_accessed_at`, `access_count`) is the write an app makes
 * on every recall; losing the last `deferredFlushMs` of them in a power cut is harmless, and
 * paying an fsync for each is not. So `recordAccess()` (and `recall()`) queue it with
 * `db.defer()` by default: it resolves at once, is applied within `deferredFlushMs` (or with the
 * next critical commit), and is always flushed by `close()`.
 *
 * Input errors — an embedding of the wrong length, a non-finite or all-zero embedding, an
 * oversize content, an importance outside 0..1 — are caught before any SQL: `WalguardError`
 * `INVALID_OPTION`, nothing written.
 */
import { type ColumnType, type Generated, type Kysely, sql } from 'kysely';
import { WalguardError } from '../errors.js';
import type { Walguard } from '../walguard.js';
import { type EngineSql, engineSql } from './engine-sql.js';
import {
  createPostgresVectors,
  declaredEmbedding,
  VECTOR_INDEX,
  type VectorSql,
  vectorSql,
} from './memory-vectors.js';
import type { MigrationSet } from './migrations.js';
import { readOnReaderThread } from './read-router.js';
import {
  checkBytes,
  type Filter,
  type Page,
  Repository,
  requireTables,
  whereFilter,
} from './repository.js';

/** The `memories` table, as Kysely sees it. */
export interface MemoriesTable {
  /** Primary key = rowid (what `vector_top_k` returns), never reused. */
  id: Generated<number>;
  /** What sort of memory (`fact`, `preference`, `episode`, …): 1 to 100 characters. */
  kind: string;
  /** The text. */
  content: string;
  /** 0..1; default 0.5. */
  importance: ColumnType<number, number | undefined, number>;
  /** Little-endian float32s (`F32_BLOB(dimensions)`), or NULL when not embedded. */
  embedding: ColumnType<Buffer | null, Uint8Array | null | undefined, Uint8Array | null>;
  /** Creation time, ms since the epoch. */
  created_at: number;
  /** Last recorded access, ms since the epoch; NULL until the first. */
  last_accessed_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** Recorded accesses. */
  access_count: ColumnType<number, number | undefined, number>;
}

/** The tables of `MemoryStore`; add them to the app's `DB` interface to query them with `db.kysely`. */
export interface MemoryTables {
  memories: MemoriesTable;
}

/** An embedding as the app holds it. */
export type Embedding = Float32Array | readonly number[];

/** A memory. */
export interface Memory {
  id: number;
  kind: string;
  content: string;
  /** 0..1. */
  importance: number;
  /** A fresh copy; `null` when the memory was stored without one. */
  embedding: Float32Array | null;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch; `null` until the first recorded access. */
  lastAccessedAt: number | null;
  accessCount: number;
}

/** A search result: the memory and its cosine distance to the query (0 = same direction, 2 = opposite). */
export interface ScoredMemory extends Memory {
  distance: number;
}

/** Input of `add()`. */
export interface NewMemory {
  kind: string;
  content: string;
  /** 0..1; default 0.5. */
  importance?: number;
  /** Exactly `dimensions` finite numbers, not all zero; omit or `null` to store none (then not searchable). */
  embedding?: Embedding | null;
  /** Default now (ms since the epoch). */
  createdAt?: number;
}

/** A change to a memory. */
export interface MemoryPatch {
  kind?: string;
  content?: string;
  importance?: number;
  embedding?: Embedding | null;
}

/** Which memories a search or listing considers. */
export interface MemoryFilter {
  /** One kind, or any of several. */
  kind?: string | readonly string[];
  /** Only memories with at least this importance. */
  minImportance?: number;
  /** Only memories created at or after this time (ms). */
  createdAfter?: number;
  /** Only memories created before this time (ms). */
  createdBefore?: number;
}

/** Options of `search()` and `recall()`. */
export interface SearchOptions extends MemoryFilter {
  /** How many memories, integer 1..1000. Default 10. */
  k?: number;
  /** Scan every row instead of using the vector index: exact, and linear in the table. Default false. */
  exact?: boolean;
}

/** Options of `list()`. */
export interface ListMemoriesOptions extends MemoryFilter {
  /** Order, newest/most first: `created` (default), `importance` or `accessed`. */
  orderBy?: 'created' | 'importance' | 'accessed';
  /** Most memories per page, integer >= 1. Default 50. */
  limit?: number;
  /** The `next` cursor of the previous page (same `orderBy`). */
  after?: string;
}

/** Options of `MemoryStore.open()`. */
export interface MemoryStoreOptions {
  /** Embedding dimensions; must match the `dimensions` given to `memoryMigrations()`. Required. */
  dimensions: number;
  /** Largest memory content, in UTF-8 bytes, integer >= 1. Default 1 MiB. */
  maxContentBytes?: number;
  /**
   * Below this many embedded memories, `search()` scans them (exact) instead of asking the
   * vector index; integer >= 0, `0` = always the index (unless `exact`). Default 2000.
   */
  scanBelow?: number;
}

/** Options of `recordAccess()`. */
export interface RecordAccessOptions {
  /** The access time, ms since the epoch. Default now. */
  at?: number;
  /** `deferred` (the default here) or `critical`. */
  durability?: 'deferred' | 'critical';
}

/** Most embedding dimensions accepted (libSQL's vector limit). */
export const MAX_DIMENSIONS = 65536;

/** Default `scanBelow`: where a scan of 768-dimension embeddings was still well ahead of the index. */
const DEFAULT_SCAN_BELOW = 2000;

/** Most `k`. */
const MAX_K = 1000;

/** Index rounds a filtered search tries (candidates ×4 each) before it scans instead. */
const WIDEN_ROUNDS = 3;

/** The migrations of `MemoryStore` for `dimensions`-long embeddings, as a set with its own migration table (`walguard_migration_memories`). */
export function memoryMigrations(options: { dimensions: number }): MigrationSet {
  const dimensions = checkDimensions(options?.dimensions);
  return {
    name: 'memories',
    migrations: {
      '0001_memories': {
        async up(db: Kysely<unknown>): Promise<void> {
          const { name, int64, double } = engineSql(db);
          const sqlite = name === 'sqlite';
          const vectors = sqlite
            ? { type: sql.raw(`F32_BLOB(${dimensions})`), kind: 'libsql' as const }
            : await createPostgresVectors(db, dimensions);
          const size =
            vectors.kind === 'libsql'
              ? `length(embedding) = ${dimensions * 4}`
              : vectors.kind === 'real[]'
                ? `cardinality(embedding) = ${dimensions}`
                : 'true';
          await db.schema
            .createTable('memories')
            .addColumn('id', int64, (c) =>
              sqlite
                ? c.primaryKey().autoIncrement()
                : c.primaryKey().generatedByDefaultAsIdentity(),
            )
            .addColumn('kind', 'text', (c) =>
              c.notNull().check(sql.raw('length(kind) BETWEEN 1 AND 100')),
            )
            .addColumn('content', 'text', (c) => c.notNull())
            .addColumn('importance', double, (c) =>
              c.notNull().defaultTo(0.5).check(sql.raw('importance >= 0 AND importance <= 1')),
            )
            .addColumn('embedding', vectors.type, (c) =>
              c.check(sql.raw(`embedding IS NULL OR ${size}`)),
            )
            .addColumn('created_at', int64, (c) => c.notNull())
            .addColumn('last_accessed_at', int64)
            .addColumn('access_count', int64, (c) => c.notNull().defaultTo(0))
            .execute();
          if (vectors.kind !== 'real[]') {
            const index =
              vectors.kind === 'libsql'
                ? `CREATE INDEX ${VECTOR_INDEX} ON memories (libsql_vector_idx(embedding, 'metric=cosine'))`
                : `CREATE INDEX ${VECTOR_INDEX} ON memories USING hnsw (embedding vector_cosine_ops)`;
            await sql.raw(index).execute(db);
          }
          await db.schema
            .createIndex('memories_by_kind')
            .on('memories')
            .columns(['kind', 'created_at'])
            .execute();
        },
      },
    },
  };
}

export class MemoryStore {
  /** The `memories` repository, for queries the store does not offer. */
  readonly memories: Repository<MemoryTables, 'memories', 'id'>;
  /** Embedding dimensions. */
  readonly dimensions: number;
  /** Largest content, in UTF-8 bytes. */
  readonly maxContentBytes: number;
  /** Below this many embedded memories, `search()` scans instead of using the index. */
  readonly scanBelow: number;
  /** How embeddings are stored: `libsql` (F32_BLOB), `pgvector`, or `real[]` (PostgreSQL without pgvector). */
  readonly vectorKind: VectorSql['kind'];
  readonly #db: Walguard<MemoryTables>;
  readonly #vectors: VectorSql;
  readonly #sql: EngineSql;

  private constructor(
    db: Walguard<MemoryTables>,
    dimensions: number,
    maxContentBytes: number,
    scanBelow: number,
    vectors: VectorSql,
  ) {
    this.#db = db;
    this.#vectors = vectors;
    this.vectorKind = vectors.kind;
    this.#sql = engineSql(db.kysely as Kysely<unknown>);
    this.dimensions = dimensions;
    this.maxContentBytes = maxContentBytes;
    this.scanBelow = scanBelow;
    this.memories = new Repository(db, 'memories', {
      primaryKey: 'id',
      maxValueBytes: Math.max(maxContentBytes, dimensions * 4),
    });
  }

  /**
   * A store on `db`. Checks that the table exists (run `memoryMigrations()` first) and that it
   * holds `dimensions`-long embeddings; throws `INVALID_OPTION` otherwise.
   */
  static async open<DB>(db: Walguard<DB>, options: MemoryStoreOptions): Promise<MemoryStore> {
    const dimensions = checkDimensions(options?.dimensions);
    const maxContentBytes = options.maxContentBytes ?? 1024 * 1024;
    if (!Number.isSafeInteger(maxContentBytes) || maxContentBytes < 1) {
      throw invalid(
        `Expected \`maxContentBytes\` to be an integer >= 1, got \`${String(maxContentBytes)}\``,
      );
    }
    const scanBelow = options.scanBelow ?? DEFAULT_SCAN_BELOW;
    if (!Number.isSafeInteger(scanBelow) || scanBelow < 0) {
      throw invalid(`Expected \`scanBelow\` to be an integer >= 0, got \`${String(scanBelow)}\``);
    }
    const loose = db as unknown as Walguard<MemoryTables>;
    await requireTables(loose, ['memories']);
    const kysely = loose.kysely as Kysely<unknown>;
    const found = await declaredEmbedding(kysely, engineSql(kysely).name);
    const declared = found?.declared ?? '(none)';
    const expected = { libsql: `F32_BLOB(${dimensions})`, pgvector: `vector(${dimensions})` };
    if (declared !== (expected[found?.kind as keyof typeof expected] ?? `real[${dimensions}]`)) {
      throw invalid(
        `The memories table stores embeddings as ${declared}, but this store was opened with dimensions: ${dimensions}. Open it with the dimensions it was created with, or migrate the table (re-embedding every memory)`,
      );
    }
    const vectors = vectorSql(found!.kind);
    return new MemoryStore(loose, dimensions, maxContentBytes, scanBelow, vectors);
  }

  /** Adds a memory (one critical unit) and resolves with it once durable. */
  async add(memory: NewMemory): Promise<Memory> {
    const [added] = await this.addMany([memory]);
    return added!;
  }

  /** Adds several memories as ONE unit: all or none. */
  async addMany(memories: readonly NewMemory[]): Promise<Memory[]> {
    if (!Array.isArray(memories)) throw invalid('Expected `memories` to be an array');
    const rows = memories.map((m, i) => this.#newRow(m, `memories[${i}]`));
    const stored = await this.memories.insertMany(rows);
    return stored.map((r) => this.#memory(r));
  }

  /** The memory, or `undefined`. */
  async get(id: number): Promise<Memory | undefined> {
    const row = await this.memories.findById(id);
    return row === undefined ? undefined : this.#memory(row);
  }

  /** Changes a memory; resolves with it, or `undefined` when there is none. */
  async update(id: number, patch: MemoryPatch): Promise<Memory | undefined> {
    const set: Partial<Record<'kind' | 'content' | 'importance' | 'embedding', unknown>> = {};
    if (patch.kind !== undefined) set.kind = checkKind(patch.kind, 'kind');
    if (patch.content !== undefined) set.content = this.#content(patch.content, 'content');
    if (patch.importance !== undefined)
      set.importance = checkImportance(patch.importance, 'importance');
    if (patch.embedding !== undefined) {
      set.embedding = patch.embedding === null ? null : this.#blob(patch.embedding, 'embedding');
    }
    const row = await this.memories.update(id, set as Parameters<typeof this.memories.update>[1]);
    return row === undefined ? undefined : this.#memory(row);
  }

  /** Deletes a memory (and its vector-index entry); `true` when it existed. */
  delete(id: number): Promise<boolean> {
    return this.memories.delete(id);
  }

  /** How many memories match the filter. */
  count(filter: MemoryFilter = {}): Promise<number> {
    return this.memories.count(toFilter(filter));
  }

  /** Memories in `orderBy` order (newest or most first), a page at a time. */
  async list(options: ListMemoriesOptions = {}): Promise<Page<Memory>> {
    const column = {
      created: 'created_at',
      importance: 'importance',
      accessed: 'last_accessed_at',
    }[options.orderBy ?? 'created'] as 'created_at' | 'importance' | 'last_accessed_at' | undefined;
    if (column === undefined) {
      throw invalid(
        `Expected \`orderBy\` to be 'created', 'importance' or 'accessed', got \`${String(options.orderBy)}\``,
      );
    }
    const page = await this.memories.find({
      where: toFilter(options),
      orderBy: [{ column, direction: 'desc' }],
      limit: options.limit ?? 50,
      after: options.after,
    });
    return { rows: page.rows.map((r) => this.#memory(r)), next: page.next };
  }

  /**
   * The `k` memories nearest to `query` by cosine distance that pass the filter, nearest first
   * (ties by id). Uses the vector index unless `exact` (see the file header). Reads only.
   */
  async search(query: Embedding, options: SearchOptions = {}): Promise<ScoredMemory[]> {
    const k = options.k ?? 10;
    if (!Number.isSafeInteger(k) || k < 1 || k > MAX_K) {
      throw invalid(`Expected \`k\` to be an integer from 1 to ${MAX_K}, got \`${String(k)}\``);
    }
    const q = this.#blob(query, 'query');
    const filter = toFilter(options);
    const filtered = Object.keys(filter).length > 0;
    const k2 = this.#db.kysely as unknown as Kysely<MemoryTables & { t: { id: number } }>;
    const distance = this.#vectors.distance(sql.ref('m.embedding'), q);
    const toScored = (row: MemoryRow & { distance: number }): ScoredMemory => ({
      ...this.#memory(row),
      distance: row.distance,
    });
    const scan = async () => {
      const rows = await k2
        .selectFrom('memories as m')
        .selectAll('m')
        .select(distance.as('distance'))
        .where('m.embedding', 'is not', null)
        .$if(filtered, (qb) => qb.where((eb) => whereFilter(eb, filter, 'm', k2)))
        .orderBy('distance')
        .orderBy('m.id')
        .limit(k)
        .modifyEnd(readOnReaderThread)
        .execute();
      return rows.map(toScored);
    };
    if (
      options.exact === true ||
      !this.#vectors.indexed ||
      (await this.#embeddedFewerThan(this.scanBelow))
    ) {
      return scan();
    }
    // DiskANN is approximate: asking it for exactly k neighbours sometimes missed the true
    // nearest (even a distance-0 match right after an UPDATE, seen in CI). Oversample, then
    // order the candidates by exact distance.
    let candidates = filtered ? Math.max(4 * k, 32) : Math.max(2 * k, 16);
    for (let round = 1; ; round++) {
      const rows = await k2
        .selectFrom(this.#vectors.candidates(q, candidates).as('t'))
        .innerJoin('memories as m', 'm.id', 't.id')
        .selectAll('m')
        .select(distance.as('distance'))
        .$if(filtered, (qb) => qb.where((eb) => whereFilter(eb, filter, 'm', k2)))
        .orderBy('distance')
        .orderBy('m.id')
        .limit(k)
        .modifyEnd(readOnReaderThread)
        .execute();
      if (rows.length >= k || !filtered) return rows.map(toScored);
      // Too few candidates passed the filter. Widen; past WIDEN_ROUNDS, or once the index
      // would have to return most of the table (DiskANN may then still miss some), scan.
      const total = await this.memories.count({ embedding: { isNull: false } });
      candidates *= 4;
      if (round >= WIDEN_ROUNDS || candidates >= total / 2) return scan();
    }
  }

  /** Whether fewer than `n` memories have an embedding; reads at most `n` rows. */
  async #embeddedFewerThan(n: number): Promise<boolean> {
    if (n === 0) return false;
    const { rows } = await sql<{ n: number }>`
      SELECT count(*) AS n FROM (
        SELECT 1 FROM memories WHERE embedding IS NOT NULL LIMIT ${n}) AS e ${readOnReaderThread}`.execute(
      this.#db.kysely,
    );
    return Number(rows[0]!.n) < n;
  }

  /**
   * `search()`, then records an access to every memory returned (deferred, see
   * `recordAccess`). The results show the memories as they were before this access.
   */
  async recall(query: Embedding, options: SearchOptions = {}): Promise<ScoredMemory[]> {
    const found = await this.search(query, options);
    if (found.length > 0) await this.recordAccess(found.map((m) => m.id));
    return found;
  }

  /**
   * Sets `last_accessed_at` (never backwards) and adds 1 to `access_count` of each memory.
   * Deferred by default: resolves at once; applied within `deferredFlushMs`; its errors go to
   * the `error` event. With `{ durability: 'critical' }` resolves with the number of memories
   * updated, once durable.
   */
  recordAccess(
    ids: number | readonly number[],
    options?: RecordAccessOptions & { durability?: 'deferred' },
  ): Promise<void>;
  recordAccess(
    ids: number | readonly number[],
    options: RecordAccessOptions & { durability: 'critical' },
  ): Promise<number>;
  recordAccess(
    ids: number | readonly number[],
    options?: RecordAccessOptions,
  ): Promise<number | undefined>;
  recordAccess(
    ids: number | readonly number[],
    options: RecordAccessOptions = {},
  ): Promise<unknown> {
    const durability = options.durability ?? 'deferred';
    if (durability !== 'deferred' && durability !== 'critical') {
      return Promise.reject(
        invalid(
          `Expected \`durability\` to be 'deferred' or 'critical', got \`${String(durability)}\``,
        ),
      );
    }
    if (Array.isArray(ids) && ids.length === 0) {
      return Promise.resolve(durability === 'critical' ? 0 : undefined);
    }
    // Built (and checked) inside write()/defer(): a deferred call with bad input is reported
    // like any deferred failure (error event, logger), never as an unhandled rejection.
    const build = (k: Kysely<MemoryTables>) => {
      const list = typeof ids === 'number' ? [ids] : [...ids];
      for (const id of list) {
        if (!Number.isSafeInteger(id)) {
          throw invalid(`Expected memory ids to be integers, got \`${String(id)}\``);
        }
      }
      const at = options.at ?? Date.now();
      if (!Number.isSafeInteger(at) || at < 0) {
        throw invalid(
          `Expected \`at\` to be ms since the epoch (an integer >= 0), got \`${String(at)}\``,
        );
      }
      return k
        .updateTable('memories')
        .set((eb) => ({
          last_accessed_at: eb.fn(this.#sql.greatest, [
            eb.fn.coalesce('last_accessed_at', eb.val(0)),
            eb.val(at),
          ]),
          access_count: eb('access_count', '+', 1),
        }))
        .where('id', 'in', list);
    };
    if (durability === 'deferred') return this.#db.defer(build);
    return this.#db.write(build).then((result) => Number(result.numAffectedRows ?? 0n));
  }

  #newRow(m: NewMemory, where: string) {
    if (typeof m !== 'object' || m === null) {
      throw invalid(`Expected \`${where}\` to be an object with \`kind\` and \`content\``);
    }
    const createdAt = m.createdAt ?? Date.now();
    if (!Number.isSafeInteger(createdAt) || createdAt < 0) {
      throw invalid(
        `Expected \`${where}.createdAt\` to be ms since the epoch, got \`${String(createdAt)}\``,
      );
    }
    return {
      kind: checkKind(m.kind, `${where}.kind`),
      content: this.#content(m.content, `${where}.content`),
      importance: checkImportance(m.importance ?? 0.5, `${where}.importance`),
      embedding:
        m.embedding === undefined || m.embedding === null
          ? null
          : this.#blob(m.embedding, `${where}.embedding`),
      created_at: createdAt,
    };
  }

  #content(content: unknown, what: string): string {
    if (typeof content !== 'string')
      throw invalid(`Expected \`${what}\` to be a string, got ${typeof content}`);
    checkBytes(content, this.maxContentBytes, what, 'maxContentBytes');
    return content;
  }

  /** A row as a `Memory` (the embedding decoded for this engine). */
  #memory(row: MemoryRow): Memory {
    return {
      id: row.id,
      kind: row.kind,
      content: row.content,
      importance: row.importance,
      embedding: this.#vectors.decode(row.embedding),
      createdAt: row.created_at,
      lastAccessedAt: row.last_accessed_at,
      accessCount: row.access_count,
    };
  }

  /** An embedding as this engine stores it (`F32_BLOB` bytes, a vector, a real[]), checked. */
  #blob(embedding: Embedding, what: string): Buffer {
    const isArray = Array.isArray(embedding) || embedding instanceof Float32Array;
    if (!isArray) {
      throw invalid(
        `Expected \`${what}\` to be a Float32Array or an array of numbers, got ${typeof embedding}; nothing was written`,
      );
    }
    if (embedding.length !== this.dimensions) {
      throw new WalguardError(
        'INVALID_OPTION',
        `Expected \`${what}\` to have ${this.dimensions} dimensions, got ${embedding.length}; nothing was written`,
        { details: { expected: this.dimensions, got: embedding.length } },
      );
    }
    const out = new Float32Array(this.dimensions);
    let norm = 0;
    for (let i = 0; i < this.dimensions; i++) {
      const v = embedding[i] as number;
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw invalid(
          `Expected \`${what}[${i}]\` to be a finite number, got \`${String(v)}\`; nothing was written`,
        );
      }
      out[i] = v;
      norm += v * v;
    }
    if (norm === 0) {
      throw invalid(
        `Expected \`${what}\` not to be all zeros: its cosine distance to anything is undefined; nothing was written`,
      );
    }
    // Typed as the table's column (bytes); on PostgreSQL it is the engine's own form.
    return this.#vectors.encode(out) as Buffer;
  }
}

type MemoryRow = {
  id: number;
  kind: string;
  content: string;
  importance: number;
  /** As the engine returns it: bytes (libSQL), number[] (real[]) or vector text (pgvector). */
  embedding: Buffer | null;
  created_at: number;
  last_accessed_at: number | null;
  access_count: number;
};

/** The repository filter of a `MemoryFilter`. */
function toFilter(filter: MemoryFilter): Filter<MemoryRow> {
  const out: { -readonly [C in keyof MemoryRow]?: Filter<MemoryRow>[C] } = {};
  if (filter.kind !== undefined) {
    out.kind = typeof filter.kind === 'string' ? filter.kind : { in: [...filter.kind] };
  }
  const created: { gte?: number; lt?: number } = {};
  if (filter.createdAfter !== undefined)
    created.gte = checkNumber(filter.createdAfter, 'createdAfter');
  if (filter.createdBefore !== undefined)
    created.lt = checkNumber(filter.createdBefore, 'createdBefore');
  if (Object.keys(created).length > 0) out.created_at = created;
  if (filter.minImportance !== undefined) {
    out.importance = { gte: checkNumber(filter.minImportance, 'minImportance') };
  }
  return out;
}

function checkDimensions(dimensions: unknown): number {
  if (
    !Number.isSafeInteger(dimensions) ||
    (dimensions as number) < 1 ||
    (dimensions as number) > MAX_DIMENSIONS
  ) {
    throw invalid(
      `Expected \`dimensions\` to be an integer from 1 to ${MAX_DIMENSIONS}, got \`${String(dimensions)}\``,
    );
  }
  return dimensions as number;
}

function checkKind(kind: unknown, what: string): string {
  if (typeof kind !== 'string' || kind.length === 0 || kind.length > 100) {
    throw invalid(
      `Expected \`${what}\` to be a string of 1 to 100 characters, got \`${String(kind)}\`; nothing was written`,
    );
  }
  return kind;
}

function checkImportance(importance: unknown, what: string): number {
  if (typeof importance !== 'number' || !(importance >= 0 && importance <= 1)) {
    throw invalid(
      `Expected \`${what}\` to be a number from 0 to 1, got \`${String(importance)}\`; nothing was written`,
    );
  }
  return importance;
}

function checkNumber(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw invalid(`Expected \`${what}\` to be a finite number, got \`${String(value)}\``);
  }
  return value;
}

function invalid(message: string): WalguardError {
  return new WalguardError('INVALID_OPTION', message);
}
