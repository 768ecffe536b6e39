/**
 * The engine's limit: the `libsql` package directly (what walguard's writer uses), one
 * transaction, one prepared statement, synchronous=FULL, on the calling thread. Nothing a
 * layer on top of this engine can write faster; walguard's target is half of it.
 */
import Database from 'libsql';
import { benchPragmas, INSERT_SQL, readBackFrom } from '../settings.js';
import type { CommitCount, Driver, OpenInfo } from './driver.js';
import { unsupported } from './driver.js';

export function rawLibsqlDriver(): Driver {
  const name = 'raw-libsql-tx';
  let db: Database.Database | undefined;
  let transactions = 0;
  const open = (): Database.Database => {
    if (db === undefined) throw new Error(`${name}: not open`);
    return db;
  };
  const pragma = (p: string): unknown =>
    (open().prepare(`PRAGMA ${p}`).raw(true).get() as unknown[] | undefined)?.[0];
  return {
    name,
    shape: 'bulk',

    async open(file: string): Promise<OpenInfo> {
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
