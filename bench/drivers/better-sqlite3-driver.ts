/**
 * better-sqlite3, the reference synchronous binding (its own SQLite build, not libSQL): one
 * transaction, one prepared statement, synchronous=FULL — the same trial as `raw-libsql-tx`.
 *
 * It is optional and not a devDependency (it compiles from source here, minutes of every
 * `npm ci`): `npm run bench` installs it into bench/peers/ (scripts/bench-peers.sh), and it
 * is loaded with `require` from there at run time (better-sqlite3@12; 13 needs Node 22), or
 * from the repository's own dependencies or `NODE_PATH`. The runner skips it when it cannot
 * be resolved. The few calls used are declared in `single-transaction-driver.ts` rather than
 * taken from `@types/better-sqlite3`.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Driver } from './driver.js';
import { type SyncDatabase, singleTransactionDriver } from './single-transaction-driver.js';

const peers = new URL('../peers/node_modules/better-sqlite3/package.json', import.meta.url);
const require = createRequire(existsSync(peers) ? peers : import.meta.url);

/** True when better-sqlite3 can be loaded from here (dependencies or `NODE_PATH`). */
export function betterSqlite3Available(): boolean {
  try {
    require.resolve('better-sqlite3');
    return true;
  } catch {
    return false;
  }
}

/** better-sqlite3's constructor, from bench/peers/ (or wherever `require` finds it). */
export function loadBetterSqlite3<T>(): T {
  return require('better-sqlite3') as T;
}

/** better-sqlite3's version, if it can be resolved. */
export function betterSqlite3Version(): string | undefined {
  try {
    return (require('better-sqlite3/package.json') as { version: string }).version;
  } catch {
    return undefined;
  }
}

export function betterSqlite3Driver(): Driver {
  return singleTransactionDriver('better-sqlite3-tx', (file) => {
    const Database = require('better-sqlite3') as new (file: string) => SyncDatabase;
    return new Database(file);
  });
}
