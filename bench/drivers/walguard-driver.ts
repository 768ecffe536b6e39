/**
 * walguard, as an app uses it: N concurrent callers, each writing one row per call through
 * `db.kysely` (`walguard-full`: acknowledged once durable under synchronous=FULL) or
 * `db.defer()` (`walguard-deferred`: queued at once; the timed section ends when `close()`
 * has flushed, committed and checkpointed everything). Reads go through `db.kysely` too.
 */
import { type Generated, sql } from 'kysely';
import type { SettingsReadBack } from '../../src/durability/connection-settings.js';
import { openDatabase, type Walguard } from '../../src/index.js';
import { CACHE_SIZE_KIB } from '../settings.js';
import type { CommitCount, Driver, OpenInfo } from './driver.js';
import { unsupported } from './driver.js';

/** The benchmark's schema, as Kysely sees it. */
interface BenchDB {
  rows: { id: Generated<number>; payload: string };
}

export function walguardDriver(mode: 'full' | 'deferred'): Driver {
  const name = mode === 'full' ? 'walguard-full' : 'walguard-deferred';
  let db: Walguard<BenchDB> | undefined;
  let closed = false;
  const open = (): Walguard<BenchDB> => {
    if (db === undefined) throw new Error(`${name}: not open`);
    return db;
  };
  return {
    name,
    shape: 'callers',

    async open(file: string): Promise<OpenInfo> {
      db = await openDatabase<BenchDB>({
        path: file,
        synchronous: 'FULL',
        cacheSizeKiB: CACHE_SIZE_KIB,
        logger: false,
      });
      const writer = db.stats().settings.writer as SettingsReadBack;
      const version = await sql<{ v: string }>`select sqlite_version() as v`.execute(db.kysely);
      return {
        settings: {
          journal_mode: writer.journal_mode,
          synchronous: writer.synchronous,
          cache_size: writer.cache_size,
        },
        sqliteVersion: version.rows[0]?.v ?? '?',
      };
    },

    insert:
      mode === 'full'
        ? (payload) => open().kysely.insertInto('rows').values({ payload }).execute()
        : (payload) => open().defer((k) => k.insertInto('rows').values({ payload })),

    read: (id) =>
      open()
        .kysely.selectFrom('rows')
        .select(['id', 'payload'])
        .where('id', '=', id)
        .executeTakeFirst(),

    insertAll: () => unsupported(name, 'insertAll'),

    async finishTimed(): Promise<void> {
      if (mode === 'deferred') {
        await open().close();
        closed = true;
      }
    },

    commits(): CommitCount {
      // stats() keeps working after close(); the closing checkpoint is not a commit.
      return { commits: open().stats().commits, source: 'stats' };
    },

    async notes(): Promise<string[]> {
      const s = open().stats();
      return [
        `batch size p50/p99/max: ${s.batchSize.p50}/${s.batchSize.p99}/${s.maxBatchUnits} units`,
        `commit (BEGIN..COMMIT) p50/p99: ${s.commitLatencyMs.p50.toFixed(2)}/${s.commitLatencyMs.p99.toFixed(2)} ms`,
      ];
    },

    async close(): Promise<void> {
      if (!closed) await open().close();
      closed = true;
    },
  };
}
