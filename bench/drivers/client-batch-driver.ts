/**
 * `@libsql/client`'s own bulk path: every row in one `batch(stmts, 'write')` call — one
 * transaction, one fsync. It is what an app gets when it can gather its writes itself; it
 * cannot serve independent callers that each need their own acknowledgement.
 */
import { type Client, createClient, type InStatement } from '@libsql/client';
import { benchPragmas, INSERT_SQL, readBackFrom } from '../settings.js';
import type { CommitCount, Driver, OpenInfo } from './driver.js';
import { unsupported } from './driver.js';

export function clientBatchDriver(): Driver {
  const name = 'client-batch';
  let client: Client | undefined;
  let batches = 0;
  const open = (): Client => {
    if (client === undefined) throw new Error(`${name}: not open`);
    return client;
  };
  return {
    name,
    shape: 'bulk',

    async open(file: string): Promise<OpenInfo> {
      client = createClient({ url: `file:${file}` });
      for (const statement of benchPragmas('FULL')) await client.execute(statement);
      const values = new Map<string, unknown>();
      for (const p of ['journal_mode', 'synchronous', 'cache_size']) {
        values.set(p, (await client.execute(`PRAGMA ${p}`)).rows[0]?.[0]);
      }
      const version = await client.execute('select sqlite_version()');
      return {
        settings: readBackFrom((p) => values.get(p)),
        sqliteVersion: String(version.rows[0]?.[0]),
      };
    },

    insert: () => unsupported(name, 'insert'),
    read: () => unsupported(name, 'read'),

    async insertAll(payloads: readonly string[]): Promise<void> {
      const statements: InStatement[] = payloads.map((payload) => ({
        sql: INSERT_SQL,
        args: [payload],
      }));
      await open().batch(statements, 'write');
      batches++;
    },

    async finishTimed(): Promise<void> {},

    commits(): CommitCount {
      return { commits: batches, source: 'construction' };
    },

    async notes(): Promise<string[]> {
      return [];
    },

    async close(): Promise<void> {
      client?.close();
      client = undefined;
    },
  };
}
