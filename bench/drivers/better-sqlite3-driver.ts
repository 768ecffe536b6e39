/**
 * better-sqlite3, the reference synchronous binding (its own SQLite build, not libSQL): one
 * transaction, one prepared statement, synchronous=FULL — the same trial as `raw-libsql-tx`.
 *
 * It is optional: loaded with `require` at run time (better-sqlite3@12; 13 needs Node 22), and
 * the runner skips it when it cannot be resolved. The few calls used are declared here rather
 * than taken from `@types/better-sqlite3`.
 */
import { createRequire } from 'node:module';
import { benchPragmas, INSERT_SQL, readBackFrom } from '../settings.js';
import type { CommitCount, Driver, OpenInfo } from './driver.js';
import { unsupported } from './driver.js';

/** The subset of better-sqlite3's `Statement` used here. */
interface BetterStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  raw(toggle?: boolean): BetterStatement;
}

/** The subset of better-sqlite3's `Database` used here. */
interface BetterDatabase {
  prepare(sql: string): BetterStatement;
  exec(sql: string): unknown;
  close(): unknown;
}

type BetterConstructor = new (file: string) => BetterDatabase;

const require = createRequire(import.meta.url);

/** True when better-sqlite3 can be loaded from here (dependencies or `NODE_PATH`). */
export function betterSqlite3Available(): boolean {
  try {
    require.resolve('better-sqlite3');
    return true;
  } catch {
    return false;
  }
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
  const name = 'better-sqlite3-tx';
  let db: BetterDatabase | undefined;
  let transactions = 0;
  const open = (): BetterDatabase => {
    if (db === undefined) throw new Error(`${name}: not open`);
    return db;
  };
  const pragma = (p: string): unknown =>
    (open().prepare(`PRAGMA ${p}`).raw(true).get() as unknown[] | undefined)?.[0];
  return {
    name,
    shape: 'bulk',

    async open(file: string): Promise<OpenInfo> {
      const Database = require('better-sqlite3') as BetterConstructor;
      db = new Database(file);
      for (const statement of benchPragmas('FULL')) db.exec(statement);
      const version = db.prepare('select sqlite_version()').raw(true).get() as unknown[];
      return { settings: readBackFrom(pragma), sqliteVersion: String(version[0]) };
    },

    insert: () => unsupported(name, 'insert'),
    read: () => unsupported(name, 'read'),

    async insertAll(payloads: readonly string[]): Promise<void> {
      const d = open();
      const insert = d.prepare(INSERT_SQL);
      const begin = d.prepare('BEGIN IMMEDIATE');
      const commit = d.prepare('COMMIT');
      begin.run();
      for (const payload of payloads) insert.run(payload);
      commit.run();
      transactions++;
    },

    async finishTimed(): Promise<void> {},

    commits(): CommitCount {
      return { commits: transactions, source: 'construction' };
    },

    async notes(): Promise<string[]> {
      return [];
    },

    async close(): Promise<void> {
      db?.close();
      db = undefined;
    },
  };
}
