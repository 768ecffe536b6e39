import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import {
  MemoryStore,
  memoryMigrations,
  openDatabase,
  readOnReaderThread,
} from '../../src/index.js';
import { openTemp, readFresh, rejection, tempDir } from '../helpers.js';

interface DB {
  items: { id: number; name: string; qty: number };
}

async function withItems(options: Parameters<typeof openTemp>[0] = {}, rows = 0) {
  const db = await openTemp<DB>(options);
  await sql`create table items (id integer primary key, name text not null, qty integer not null)`.execute(
    db.kysely,
  );
  if (rows > 0) {
    await db.write((k) =>
      Array.from({ length: rows }, (_, i) =>
        k.insertInto('items').values({ id: i + 1, name: `n${i + 1}`, qty: i + 1 }),
      ),
    );
  }
  return db;
}

/** A read that keeps SQLite busy for about 0.4 µs per row counted, with no table needed. */
function heavyRead(db: Awaited<ReturnType<typeof withItems>>, rows: number) {
  return sql<{
    n: number;
  }>`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows}) SELECT count(*) AS n FROM c`.execute(
    db.kysely,
  );
}

/**
 * Watches the main thread's event loop with a 1 ms interval; `stop()` returns the longest
 * time between two of its ticks (or since the last one), in ms.
 */
function watchEventLoop() {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  return {
    stop(): number {
      clearInterval(timer);
      return Math.max(longest, performance.now() - last);
    },
  };
}

/** How long the awaited chains run: without yielding, a chain stalls the loop this long. */
const CHAIN_MS = 2000;

/**
 * The stall the tests accept, as a share of what the code they guard against stalls (the
 * whole read, the whole chain): generous, because these 2-core machines are shared (at a
 * load average of 14, an idle Node process saw its 1 ms timer 182 ms late). The figures
 * themselves (a few ms) are measured by `npm run bench` (bench/reads).
 */
const STALL_SHARE = 1 / 4;

/**
 * Point reads by primary key, each awaited before the next, for `CHAIN_MS` (`onThread`: all
 * of them with `readOnReaderThread`); returns how many ran and the event loop's longest stall.
 */
async function awaitedChain(db: Awaited<ReturnType<typeof withItems>>, onThread: boolean) {
  const loop = watchEventLoop();
  const started = performance.now();
  let reads = 0;
  while (performance.now() - started < CHAIN_MS) {
    const id = (reads % 200) + 1;
    const query = db.kysely.selectFrom('items').select('qty').where('id', '=', id);
    const row = await (onThread
      ? query.modifyEnd(readOnReaderThread)
      : query
    ).executeTakeFirstOrThrow();
    expect(row.qty).toBe(id);
    reads++;
  }
  return { reads, longestStall: loop.stop() };
}

describe('reader threads', () => {
  it('reads on reader threads see every write that resolved before they started', async () => {
    const db = await withItems({ readers: { threads: 2, mainThreadMaxUs: 0 } });
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 25; i++) {
        const id = w * 100 + i + 1;
        await db.kysely
          .insertInto('items')
          .values({ id, name: `w${id}`, qty: i })
          .execute();
        const seen = await db.kysely
          .selectFrom('items')
          .select('name')
          .where('id', '=', id)
          .executeTakeFirst();
        expect(seen?.name).toBe(`w${id}`);
        const count = await db.kysely
          .selectFrom('items')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('id', '>', w * 100)
          .where('id', '<=', w * 100 + 100)
          .executeTakeFirstOrThrow();
        expect(count.n).toBe(i + 1);
      }
    });
    await Promise.all(writers);
    const reads = db.stats().reads;
    expect(reads.main).toBe(0);
    expect(reads.pool).toBe(400);
    expect(reads.threads).toBe(2);
  });

  it('a heavy read runs on a reader thread and never holds up a timer on the main thread', async () => {
    const db = await withItems();
    // Twice: unmeasured at first, then known to be slow; both times off the main thread.
    for (let run = 0; run < 2; run++) {
      const loop = watchEventLoop();
      const started = performance.now();
      const { rows } = await heavyRead(db, 5_000_000);
      const readMs = performance.now() - started;
      const longestStall = loop.stop();
      expect(rows).toEqual([{ n: 5_000_000 }]);
      // The read itself took long (on the main thread it would stall the loop that long)...
      expect(readMs).toBeGreaterThan(250);
      // ...and the timer kept ticking meanwhile.
      expect(longestStall).toBeLessThan(readMs * STALL_SHARE);
    }
    expect(db.stats().reads).toMatchObject({ main: 0, pool: 2 });
  });

  it('a chain of awaited cheap reads lets timers run, and most of it runs on the main thread', async () => {
    const db = await withItems({}, 200);
    const { reads, longestStall } = await awaitedChain(db, false);
    // Without yielding, the chain holds the loop for all of it.
    expect(longestStall).toBeLessThan(CHAIN_MS * STALL_SHARE);
    const stats = db.stats().reads;
    expect(stats.main + stats.pool).toBe(reads);
    expect(stats.main).toBeGreaterThan(stats.pool);
    expect(stats.overflowed).toBeGreaterThan(0);
  });

  it('a chain of awaited reads on a reader thread lets timers run between round trips', async () => {
    const db = await withItems({}, 200);
    const { reads, longestStall } = await awaitedChain(db, true);
    // Node's worker port handles up to 1,000 queued messages in one go: replies that came
    // back while the chain was still asking for the next read would keep the loop from turning.
    expect(longestStall).toBeLessThan(CHAIN_MS * STALL_SHARE);
    expect(db.stats().reads).toMatchObject({ main: 0, pool: reads });
  });

  it('routes by measured cost: cheap texts stay on the main thread, a slow one stays on the threads', async () => {
    // Routing by cost alone: no turn budget (the awaited-chain tests above cover it), and a
    // threshold (5 ms) far from both reads' costs (~30 µs and ~20 ms), so that a loaded
    // machine — where a descheduled point read can measure a few ms — does not move the
    // cheap text.
    const db = await withItems({ readers: { turnBudgetUs: Infinity, mainThreadMaxUs: 5000 } }, 50);
    for (let i = 0; i < 30; i++) {
      await db.kysely.selectFrom('items').selectAll().where('id', '=', 1).execute();
    }
    const cheap = db.stats().reads;
    // The first run is unmeasured and goes to a thread; the statement's first runs include
    // preparing it, so a few more may follow before its estimate falls under 250 µs.
    expect(cheap.main).toBeGreaterThanOrEqual(20);
    for (let i = 0; i < 5; i++) await heavyRead(db, 50_000);
    const after = db.stats().reads;
    expect(after.main).toBe(cheap.main);
    expect(after.pool).toBe(cheap.pool + 5);
    expect(after.pooledStatements).toBeGreaterThanOrEqual(1);
  });

  it('readOnReaderThread keeps even a cheap read off the main thread', async () => {
    const db = await withItems({}, 5);
    for (let i = 0; i < 10; i++) {
      const rows = await db.kysely
        .selectFrom('items')
        .selectAll()
        .where('id', '=', 2)
        .modifyEnd(readOnReaderThread)
        .execute();
      expect(rows).toEqual([{ id: 2, name: 'n2', qty: 2 }]);
    }
    expect(db.stats().reads).toMatchObject({ main: 0, pool: 10 });
  });

  it('streams from a reader thread, and a stream ended early leaves later streams and reads current', async () => {
    const db = await withItems({}, 1000);
    const seen: number[] = [];
    for await (const row of db.kysely.selectFrom('items').select('id').orderBy('id').stream(64)) {
      seen.push(row.id);
    }
    expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    // End one early: its statement (and snapshot) must not outlive the loop.
    for await (const row of db.kysely.selectFrom('items').select('id').orderBy('id').stream(10)) {
      if (row.id === 3) break;
    }
    await db.kysely.insertInto('items').values({ id: 1001, name: 'late', qty: 0 }).execute();
    let streamed = 0;
    for await (const _ of db.kysely.selectFrom('items').select('id').stream(100)) streamed++;
    expect(streamed).toBe(1001);
    const count = await db.kysely
      .selectFrom('items')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(count.n).toBe(1001);
    expect(db.stats().reads.streams).toBe(3);
  });

  it('a stream ended early on the main-thread reader no longer freezes its snapshot', async () => {
    const db = await withItems({}, 300);
    const { Reader } = await import('../../src/repo/reader.js');
    const { openSqlite } = await import('../../src/sqlite-types.js');
    const { connectionSettingsOf } = await import('../../src/durability/connection-settings.js');
    const reader = new Reader(await openSqlite(db.path, {}), connectionSettingsOf(db.options));
    try {
      for (const chunk of reader.stream('SELECT id FROM items ORDER BY id', [], 10)) {
        expect(chunk.rows).toHaveLength(10);
        break;
      }
      await db.kysely.insertInto('items').values({ id: 301, name: 'late', qty: 0 }).execute();
      expect(reader.query('SELECT count(*) AS n FROM items', []).rows).toEqual([{ n: 301 }]);
    } finally {
      reader.close();
    }
  });

  it('vector search and recall run on the reader threads', async () => {
    const db = await openTemp({ migrations: memoryMigrations({ dimensions: 4 }) });
    const store = await MemoryStore.open(db, { dimensions: 4, scanBelow: 0 });
    await store.addMany(
      Array.from({ length: 40 }, (_, i) => ({
        kind: i % 2 === 0 ? 'fact' : 'episode',
        content: `m${i}`,
        embedding: [1, i / 10, (i % 7) / 7, 0.5],
      })),
    );
    const before = db.stats().reads;
    const near = await store.search([1, 0.5, 5 / 7, 0.5], { k: 3 });
    expect(near[0]?.content).toBe('m5');
    const exact = await store.search([1, 0.5, 5 / 7, 0.5], { k: 3, exact: true, kind: 'episode' });
    expect(exact[0]?.content).toBe('m5');
    const query = [1, 3.9, 1 / 7, 0.5];
    const [best] = await store.search(query, { k: 1, exact: true });
    const recalled = await store.recall(query, { k: 1 });
    expect(recalled.map((m) => m.id)).toEqual([best?.id]);
    const after = db.stats().reads;
    expect(after.main).toBe(before.main);
    expect(after.pool - before.pool).toBeGreaterThanOrEqual(4);
  });

  it('reads inside an interactive transaction run on the writer and see its writes', async () => {
    const db = await withItems({}, 1);
    const before = db.stats().reads;
    const qty = await db.transaction(async (trx) => {
      await trx.updateTable('items').set({ qty: 41 }).where('id', '=', 1).execute();
      const row = await trx
        .selectFrom('items')
        .select('qty')
        .where('id', '=', 1)
        .executeTakeFirstOrThrow();
      return row.qty;
    });
    expect(qty).toBe(41);
    const after = db.stats().reads;
    expect(after.writer).toBe(before.writer + 1);
    expect(after.main + after.pool).toBe(before.main + before.pool);
  });

  it('every reader connection carries every setting, read back: threads and stream connections', async () => {
    const db = await withItems({
      synchronous: 'EXTRA',
      busyTimeoutMs: 1234,
      cacheSizeKiB: 4096,
      readers: { threads: 3, mainThreadMaxUs: 0 },
    });
    const read = db.stats().settings;
    const readerThreads = 'readerThreads' in read ? read.readerThreads : [];
    expect(readerThreads).toHaveLength(3);
    for (const s of readerThreads) {
      expect(s).toMatchObject({
        journal_mode: 'wal',
        synchronous: 3,
        busy_timeout: 1234,
        cache_size: -4096,
        foreign_keys: 1,
        query_only: 1,
      });
    }
    // A stream's own connection, opened on demand, carries them too.
    const streamed: unknown[] = [];
    const settings = db.kysely
      .selectFrom(sql<{ cache_size: number }>`pragma_cache_size()`.as('c'))
      .innerJoin(sql<{ timeout: number }>`pragma_busy_timeout()`.as('b'), (j) => j.onTrue())
      .innerJoin(sql<{ query_only: number }>`pragma_query_only()`.as('q'), (j) => j.onTrue())
      .selectAll();
    for await (const row of settings.stream(1)) streamed.push(row);
    expect(streamed).toEqual([{ cache_size: -4096, timeout: 1234, query_only: 1 }]);
  });

  it('close() lets queued and running reads finish, then closes the threads; later reads get CLOSED', async () => {
    const db = await withItems();
    const reads = [heavyRead(db, 300_000), heavyRead(db, 300_001), heavyRead(db, 300_002)];
    const closing = db.close();
    const results = await Promise.all(reads);
    expect(results.map((r) => r.rows[0]?.n)).toEqual([300_000, 300_001, 300_002]);
    await closing;
    expect(db.stats().reads.threads).toBe(0);
    const error = await rejection(db.kysely.selectFrom('items').selectAll().execute());
    expect(error.code).toBe('CLOSED');
  });

  it('a reader thread that dies fails the reads it held with IO_ERROR, and another takes its place', async () => {
    const db = await withItems({}, 3);
    const { ReaderPool } = await import('../../src/repo/reader-pool.js');
    const { connectionSettingsOf } = await import('../../src/durability/connection-settings.js');
    const settings = connectionSettingsOf(db.options);
    const pool = await ReaderPool.start(
      { path: db.path, encryptionKey: undefined, settings, nice: 0 },
      1,
      db.options.logger,
    );
    try {
      // A message the thread cannot handle throws there, uncaught: the thread dies (as it
      // would from a bug). Not worker.terminate(): terminating a thread inside a libsql call
      // aborts the whole process (neon panics), measured.
      pool.workers[0]!.postMessage({ op: 'reads', reads: null });
      const held = pool.read('query', 'SELECT count(*) AS n FROM items', [], 1);
      const error = await rejection(held);
      expect(error.code).toBe('IO_ERROR');
      const after = await pool.read('query', 'SELECT count(*) AS n FROM items', [], 1);
      expect(after.result?.rows).toEqual([{ n: 3 }]);
      expect(pool.threads).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('a script that reads on the threads and never calls close() still exits, with its writes kept', () => {
    const file = path.join(tempDir(), 'reads.db');
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, '../fixtures/reads-child.ts'), file],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(child.status, child.stderr).toBe(0);
    expect(child.stdout).toBe('read 1000000\nstreamed 10\n');
    expect(readFresh(file, 'select count(*) as n from items')).toEqual([{ n: 100 }]);
  });

  it.runIf(process.platform === 'linux')(
    'reader threads run at the configured CPU niceness, the rest of the process at its own',
    async () => {
      const niceOf = () =>
        fs.readdirSync('/proc/self/task').map((tid) => {
          const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
          // Fields after the command name (in parentheses): nice is the 19th field overall.
          return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
        });
      const before = niceOf().filter((n) => n === 7).length;
      const db = await withItems({ readers: { threads: 2, nice: 7 } });
      expect(niceOf().filter((n) => n === 7).length - before).toBe(2);
      expect(niceOf()).toContain(0);
      await db.close();
    },
  );

  it('validates the reader options', async () => {
    const file = path.join(tempDir(), 'bad.db');
    const bad = [
      [{ threads: 0 }, 'Expected `readers.threads` to be an integer from 1 to 64, got `0`'],
      [{ mainThreadMaxUs: -1 }, 'Expected `readers.mainThreadMaxUs` to be an integer >= 0'],
      [{ turnBudgetUs: 1.5 }, 'Expected `readers.turnBudgetUs` to be an integer >= 0'],
      [{ nice: 20 }, 'Expected `readers.nice` to be an integer from 0 to 19, got `20`'],
      [{ thread: 2 }, 'Unknown option'],
    ] as const;
    for (const [readers, message] of bad) {
      const error = await rejection(
        openDatabase({ path: file, logger: false, readers: readers as never }),
      );
      expect(error.code).toBe('INVALID_OPTION');
      expect(error.message).toContain(message);
    }
  });
});
