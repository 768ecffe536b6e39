/**
 * The settings every peer runs with, so that only the write strategy differs. They mirror
 * walguard's defaults (`src/options.ts`): WAL, `busy_timeout` 5000 ms, a 16 MiB page cache,
 * `wal_autocheckpoint` 1000 pages (SQLite's default, so nothing to set).
 */
import type { ReadBack } from './drivers/driver.js';

/** SQLite `synchronous` levels the suite runs. */
export type Synchronous = 'NORMAL' | 'FULL';

/** walguard's default page cache, in KiB. */
export const CACHE_SIZE_KIB = 16384;

/** The PRAGMAs a peer runs on its connection, in order. */
export function benchPragmas(synchronous: Synchronous): string[] {
  return [
    'PRAGMA busy_timeout = 5000',
    'PRAGMA journal_mode = WAL',
    `PRAGMA synchronous = ${synchronous}`,
    `PRAGMA cache_size = ${-CACHE_SIZE_KIB}`,
  ];
}

/** The table every trial writes. */
export const SCHEMA = 'CREATE TABLE rows (id INTEGER PRIMARY KEY, payload TEXT)';

/** The insert every raw peer prepares. */
export const INSERT_SQL = 'INSERT INTO rows (payload) VALUES (?)';

/** The read of the mixed workloads. */
export const SELECT_SQL = 'SELECT id, payload FROM rows WHERE id = ?';

/** Builds a `ReadBack` from a row lookup by pragma name. */
export function readBackFrom(value: (pragma: string) => unknown): ReadBack {
  return {
    journal_mode: String(value('journal_mode')).toLowerCase(),
    synchronous: Number(value('synchronous')),
    cache_size: Number(value('cache_size')),
  };
}
