/**
 * The peers of the read suite, behind one shape. Every peer runs the same SQL on the same
 * prepared database, with the same PRAGMAs (`../settings.ts`), synchronous=FULL for writes.
 *
 * - `walguard`: `db.kysely` with the defaults (cheap reads on the main thread by measured
 *   cost, the rest on reader threads).
 * - `walguard-sync`: walguard with `readers: { mainThreadMaxUs: Infinity, turnBudgetUs:
 *   Infinity }`: every read on the main thread's reader, never yielding — how walguard read
 *   before reader threads (issue 13), kept as the baseline.
 * - `naive-client`: `@libsql/client` on the file (`concurrency: 1`, as in the write suite, so
 *   that its PRAGMAs apply), each call an `execute()`.
 * - `better-sqlite3`: the fastest synchronous binding, a prepared `get()` behind an async
 *   function (point reads only). Optional: loaded at run time, skipped when absent.
 */
import { type Generated, type Kysely, sql } from 'kysely';
import { MemoryStore, openDatabase, type ReadStats, type Walguard } from '../../src/index.js';
import { loadBetterSqlite3 } from '../drivers/better-sqlite3-driver.js';
import { benchPragmas, CACHE_SIZE_KIB, INSERT_SQL, SELECT_SQL } from '../settings.js';
import type { ReadDriverName } from './read-types.js';

/** The heavy read: a full-table scan no index can help (~40-65 ms over 200,000 rows here). */
export const HEAVY_SQL = 'SELECT count(*) AS n FROM rows WHERE payload LIKE ?';
/** Its pattern. */
export const HEAVY_PATTERN = '%zz9%';

interface BenchDB {
  rows: { id: Generated<number>; payload: string };
}

/** One read peer. */
export interface ReadDriver {
  readonly name: ReadDriverName;
  /** Opens its connection(s) on the prepared file. Not timed. */
  open(file: string): Promise<void>;
  /** Inserts one row durably (synchronous=FULL). */
  insert(payload: string): Promise<unknown>;
  /** Reads the row with `id`. */
  pointRead(id: number): Promise<unknown>;
  /** Runs the heavy read. */
  heavyRead(): Promise<unknown>;
  /** `MemoryStore.recall` of the nearest 10 by exact scan (walguard peers). */
  recall?(query: Float32Array): Promise<unknown>;
  /** `MemoryStore.add` of one memory (walguard peers). */
  addMemory?(content: string, embedding: Float32Array): Promise<unknown>;
  /** Observations after the window. */
  notes(): string[];
  /** Closes everything. Not timed. */
  close(): Promise<void>;
}

/** Builds the peer named `name` (`threads`: walguard's reader threads, default its own). */
export function readDriver(name: ReadDriverName, dimensions: number, threads?: number): ReadDriver {
  const sized = threads === undefined ? {} : { threads };
  switch (name) {
    case 'walguard':
      return walguardReads(name, sized, dimensions);
    case 'walguard-sync':
      return walguardReads(
        name,
        {
          ...sized,
          mainThreadMaxUs: Number.POSITIVE_INFINITY,
          turnBudgetUs: Number.POSITIVE_INFINITY,
        },
        dimensions,
      );
    case 'naive-client':
      return naiveClientReads();
    case 'better-sqlite3':
      return betterSqlite3Reads();
  }
}

function walguardReads(
  name: ReadDriverName,
  readers: { threads?: number; mainThreadMaxUs?: number; turnBudgetUs?: number },
  dimensions: number,
): ReadDriver {
  let db: Walguard<BenchDB> | undefined;
  let store: MemoryStore | undefined;
  const open = () => {
    if (db === undefined) throw new Error(`${name}: not open`);
    return db;
  };
  const memories = () => {
    if (store === undefined) throw new Error(`${name}: no memories table`);
    return store;
  };
  return {
    name,
    async open(file) {
      db = await openDatabase<BenchDB>({
        path: file,
        synchronous: 'FULL',
        cacheSizeKiB: CACHE_SIZE_KIB,
        logger: false,
        readers,
      });
      const tables = await sql<{
        name: string;
      }>`select name from sqlite_schema where name = 'memories'`.execute(db.kysely);
      if (tables.rows.length > 0) store = await MemoryStore.open(db, { dimensions });
    },
    insert: (payload) => open().kysely.insertInto('rows').values({ payload }).execute(),
    pointRead: (id) =>
      open()
        .kysely.selectFrom('rows')
        .select(['id', 'payload'])
        .where('id', '=', id)
        .executeTakeFirst(),
    heavyRead: () =>
      (open().kysely as unknown as Kysely<BenchDB>)
        .selectFrom('rows')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('payload', 'like', HEAVY_PATTERN)
        .executeTakeFirstOrThrow(),
    recall: (query) => memories().recall(query, { k: 10, exact: true }),
    addMemory: (content, embedding) => memories().add({ kind: 'fact', content, embedding }),
    notes() {
      const r: ReadStats = open().stats().reads;
      return [
        `reads: ${r.main} on the main thread, ${r.pool} on ${r.threads} reader thread(s) (${r.overflowed} of them past the turn budget), max queue ${r.maxQueueDepth}; main p99 ${r.mainLatencyMs.p99.toFixed(2)} ms, thread p99 ${r.poolLatencyMs.p99.toFixed(1)} ms`,
      ];
    },
    async close() {
      await db?.close();
      db = undefined;
    },
  };
}

function naiveClientReads(): ReadDriver {
  type Client = import('@libsql/client').Client;
  let client: Client | undefined;
  const open = () => {
    if (client === undefined) throw new Error('naive-client: not open');
    return client;
  };
  return {
    name: 'naive-client',
    async open(file) {
      const { createClient } = await import('@libsql/client');
      client = createClient({ url: `file:${file}`, concurrency: 1 });
      for (const statement of benchPragmas('FULL')) await client.execute(statement);
    },
    insert: (payload) => open().execute({ sql: INSERT_SQL, args: [payload] }),
    pointRead: (id) => open().execute({ sql: SELECT_SQL, args: [id] }),
    heavyRead: () => open().execute({ sql: HEAVY_SQL, args: [HEAVY_PATTERN] }),
    notes: () => [],
    async close() {
      client?.close();
      client = undefined;
    },
  };
}

function betterSqlite3Reads(): ReadDriver {
  interface Statement {
    get(...params: unknown[]): unknown;
    run(...params: unknown[]): unknown;
  }
  interface Database {
    prepare(sql: string): Statement;
    exec(sql: string): unknown;
    close(): unknown;
  }
  let db: Database | undefined;
  let select: Statement | undefined;
  let insert: Statement | undefined;
  let heavy: Statement | undefined;
  return {
    name: 'better-sqlite3',
    async open(file) {
      const Better = loadBetterSqlite3<new (file: string) => Database>();
      db = new Better(file);
      for (const statement of benchPragmas('FULL')) db.exec(statement);
      select = db.prepare(SELECT_SQL);
      insert = db.prepare(INSERT_SQL);
      heavy = db.prepare(HEAVY_SQL);
    },
    insert: async (payload) => insert!.run(payload),
    pointRead: async (id) => select!.get(id),
    heavyRead: async () => heavy!.get(HEAVY_PATTERN),
    notes: () => [],
    async close() {
      db?.close();
      db = undefined;
    },
  };
}
