/**
 * The bulk "engine limit" peers (`raw-libsql-tx`, `better-sqlite3-tx`): one synchronous
 * binding, one `BEGIN IMMEDIATE … COMMIT`, one prepared statement, synchronous=FULL, on the
 * calling thread. Nothing a layer on top of the engine can write faster.
 */
import { benchPragmas, INSERT_SQL, readBackFrom } from '../settings.js';
import type { DriverName } from '../trial-types.js';
import type { CommitCount, Driver, OpenInfo } from './driver.js';
import { unsupported } from './driver.js';

/** The few calls of a synchronous binding (libsql, better-sqlite3) used here. */
export interface SyncStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  raw(toggle?: boolean): SyncStatement;
}

export interface SyncDatabase {
  prepare(sql: string): SyncStatement;
  exec(sql: string): unknown;
  close(): unknown;
}

/** A bulk driver named `name` on the database `openDatabase` opens. */
export function singleTransactionDriver(
  name: DriverName & `${string}-tx`,
  openDatabase: (file: string) => SyncDatabase,
): Driver {
  let db: SyncDatabase | undefined;
  let transactions = 0;
  const open = (): SyncDatabase => {
    if (db === undefined) throw new Error(`${name}: not open`);
    return db;
  };
  const pragma = (p: string): unknown =>
    (open().prepare(`PRAGMA ${p}`).raw(true).get() as unknown[] | undefined)?.[0];
  return {
    name,
    shape: 'bulk',

    async open(file: string): Promise<OpenInfo> {
      db = openDatabase(file);
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
