/**
 * The naive way: `@libsql/client` on a local file, PRAGMAs executed once after
 * `createClient`, then N concurrent callers each running an autocommit
 * `execute({ sql: 'INSERT …', args })`. Every insert is its own transaction, so with FULL
 * every insert waits for its own fsync, on the main thread (the binding is synchronous).
 *
 * The pitfall the contract mentions, measured here (0.18.0): in local mode the client keeps a
 * pool of up to `concurrency` (default 20) connections and a PRAGMA reaches only the
 * connection that ran it. Concurrent callers each borrow a connection, so the pool grows and
 * most inserts run on connections that never saw `synchronous=NORMAL` (they run at SQLite's
 * default, FULL). A "naive NORMAL" client is then mostly a FULL one, which would flatter
 * walguard. So that each peer really runs at its named level, the client here is pinned to
 * one connection (`concurrency: 1`), and `notes()` proves it (every concurrent read-back
 * shows the level) and shows what the default pool does with the same PRAGMAs.
 */
import { type Client, createClient } from '@libsql/client';
import {
  benchPragmas,
  INSERT_SQL,
  readBackFrom,
  SELECT_SQL,
  type Synchronous,
} from '../settings.js';
import type { CommitCount, Driver, OpenInfo } from './driver.js';
import { unsupported } from './driver.js';

const levelNames: Record<number, string> = { 0: 'OFF', 1: 'NORMAL', 2: 'FULL', 3: 'EXTRA' };

/** Concurrent read-backs per probe: more than the default pool's 20 connections. */
const PROBES = 32;

/** `PRAGMA synchronous` as read back by `PROBES` concurrent callers of `client`. */
async function concurrentSynchronous(client: Client): Promise<number[]> {
  const results = await Promise.all(
    Array.from({ length: PROBES }, () => client.execute('PRAGMA synchronous')),
  );
  return results.map((r) => Number(r.rows[0]?.[0]));
}

export function naiveClientDriver(synchronous: Synchronous): Driver {
  const name = synchronous === 'FULL' ? 'naive-client-full' : 'naive-client-normal';
  let client: Client | undefined;
  let file = '';
  const open = (): Client => {
    if (client === undefined) throw new Error(`${name}: not open`);
    return client;
  };
  const pragma = async (c: Pick<Client, 'execute'>, p: string): Promise<unknown> => {
    const rs = await c.execute(`PRAGMA ${p}`);
    return rs.rows[0]?.[0];
  };
  return {
    name,
    shape: 'callers',

    async open(path: string): Promise<OpenInfo> {
      file = path;
      client = createClient({ url: `file:${file}`, concurrency: 1 });
      for (const statement of benchPragmas(synchronous)) await client.execute(statement);
      const values = new Map<string, unknown>();
      for (const p of ['journal_mode', 'synchronous', 'cache_size']) {
        values.set(p, await pragma(client, p));
      }
      const version = await client.execute('select sqlite_version()');
      return {
        settings: readBackFrom((p) => values.get(p)),
        sqliteVersion: String(version.rows[0]?.[0]),
      };
    },

    insert: (payload) => open().execute({ sql: INSERT_SQL, args: [payload] }),

    read: (id) => open().execute({ sql: SELECT_SQL, args: [id] }),

    insertAll: () => unsupported(name, 'insertAll'),

    async finishTimed(): Promise<void> {},

    commits(writes: number): CommitCount {
      // Autocommit: one transaction per insert.
      return { commits: writes, source: 'construction' };
    },

    async notes(): Promise<string[]> {
      const want = synchronous === 'FULL' ? 2 : 1;
      const pinned = await concurrentSynchronous(open());
      // The same PRAGMAs on a client with the default pool, read back by concurrent callers.
      const pooled = createClient({ url: `file:${file}` });
      let defaults: number[];
      try {
        for (const statement of benchPragmas(synchronous)) await pooled.execute(statement);
        defaults = await concurrentSynchronous(pooled);
      } finally {
        pooled.close();
      }
      const describe = (levels: number[]) => {
        const counts = new Map<number, number>();
        for (const l of levels) counts.set(l, (counts.get(l) ?? 0) + 1);
        return [...counts].map(([l, n]) => `${n}× ${levelNames[l] ?? l}`).join(', ');
      };
      return [
        `read-back of synchronous by ${PROBES} concurrent executes on the benchmarked client (concurrency: 1): ${describe(pinned)}` +
          (pinned.every((l) => l === want)
            ? ' — as set'
            : ` — NOT as set (wanted ${levelNames[want]})`),
        `same PRAGMAs on a default client (pool of up to 20 connections), ${PROBES} concurrent read-backs: ${describe(defaults)}` +
          (defaults.every((l) => l === want)
            ? ' — as set'
            : ' — the PRAGMA reached only the connection that ran it'),
      ];
    },

    async close(): Promise<void> {
      client?.close();
      client = undefined;
    },
  };
}
