import fs from 'node:fs';
import path from 'node:path';
import { CamelCasePlugin, CompiledQuery, type Generated, Kysely, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase, SqliteError, WalguardError } from '../src/index.js';
import { delay, openTemp, readFresh, tempDir } from './helpers.js';

interface DB {
  items: { id: number | null; name: string; qty: number };
  seq: { rowid?: number; n: number; kind: string };
  parts: { unit_id: number; part: number };
}

async function withItems(options: Parameters<typeof openTemp>[0] = {}) {
  const db = await openTemp<DB>(options);
  await db.kysely.schema
    .createTable('items')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('qty', 'integer', (c) => c.notNull().check(sql`qty >= 0`))
    .execute();
  return db;
}

describe('openDatabase', () => {
  it('creates a missing parent folder and opens a relative path', async () => {
    const dir = tempDir();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const db = await openDatabase({ path: 'nested/deeper/app.db', logger: false });
      await db.close();
    } finally {
      process.chdir(cwd);
    }
    expect(fs.existsSync(path.join(dir, 'nested/deeper/app.db'))).toBe(true);
  });

  it('every connection shows the configured settings when read back', async () => {
    const db = await openTemp({
      synchronous: 'EXTRA',
      busyTimeoutMs: 1234,
      cacheSizeKiB: 4096,
      walAutocheckpointPages: 500,
    });
    const want = { synchronous: 3, busy_timeout: 1234, cache_size: -4096, wal_autocheckpoint: 500 };
    for (const [name, value] of Object.entries(want)) {
      expect(await db.writerPragma(name)).toBe(value);
      const { rows } = await sql.raw<Record<string, unknown>>(`PRAGMA ${name}`).execute(db.kysely);
      expect(Object.values(rows[0]!)).toEqual([value]);
    }
    expect(await db.writerPragma('journal_mode')).toBe('wal');
    expect(await db.writerPragma('foreign_keys')).toBe(1);
    expect(db.stats().settings.reader).toMatchObject({
      journal_mode: 'wal',
      foreign_keys: 1,
      query_only: 1,
    });
    expect(db.stats().settings.writer).toMatchObject({ synchronous: 3, query_only: 0 });
  });

  it('rejects bad options with INVALID_OPTION naming the option, what it expects and what it got', async () => {
    const bad = (options: object) => openDatabase(options as never);
    await expect(bad({ path: 'x.db', maxBatchUnits: 0 })).rejects.toThrow(
      'Expected `maxBatchUnits` to be an integer >= 1, got `0` (number)',
    );
    await expect(bad({ path: 'x.db', synchronous: 'OFF' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining(
        "Expected `synchronous` to be one of 'NORMAL', 'FULL', 'EXTRA', got `OFF` (string)",
      ),
    });
    await expect(bad({ path: 'x.db', maxBatchUnit: 5 })).rejects.toThrow(
      'Unknown option `maxBatchUnit`; did you mean `maxBatchUnits`?',
    );
    await expect(bad({ path: ':memory:' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(bad({})).rejects.toThrow('Expected `path`');
    await expect(bad({ path: 'x.db', encryption: { key: '' } })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
  });
});

describe('writes', () => {
  it('group-commits 256 concurrent critical writes in far fewer commits than units', async () => {
    const db = await withItems();
    const before = db.stats();
    await Promise.all(
      Array.from({ length: 256 }, (_, i) =>
        db.kysely
          .insertInto('items')
          .values({ name: `n${i}`, qty: i })
          .execute(),
      ),
    );
    const after = db.stats();
    const commits = after.commits - before.commits;
    expect(after.units - before.units).toBe(256);
    expect(commits).toBeLessThan(256 / 8);
    const histogram = after.batchSizeHistogram;
    expect(Object.values(histogram).reduce((a, b) => a + b, 0)).toBe(after.commits);
    expect(readFresh(db.path, 'select count(*) as n from items')).toEqual([{ n: 256 }]);
  });

  it("a failing unit is rejected alone with SQLite's code and the rest of its batch commits", async () => {
    const db = await withItems();
    const results = await Promise.allSettled([
      db.kysely.insertInto('items').values({ name: 'a', qty: 1 }).execute(),
      db.kysely.insertInto('items').values({ name: 'b', qty: -1 }).execute(),
      db.kysely.insertInto('items').values({ name: 'a', qty: 2 }).execute(),
      sql`insert into nowhere values (1)`.execute(db.kysely),
      db.kysely.insertInto('items').values({ name: 'c', qty: 3 }).execute(),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    const codes = results.map((r) =>
      r.status === 'rejected' ? (r.reason as SqliteError).code : 'ok',
    );
    expect(codes).toEqual([
      'ok',
      'SQLITE_CONSTRAINT_CHECK',
      'SQLITE_CONSTRAINT_UNIQUE',
      'SQLITE_ERROR',
      'ok',
    ]);
    const rejected = results[2] as PromiseRejectedResult;
    expect(rejected.reason).toBeInstanceOf(SqliteError);
    expect(rejected.reason).not.toBeInstanceOf(WalguardError);
    expect((rejected.reason as SqliteError).rawCode).toBe(2067);
    expect(readFresh(db.path, 'select name, qty from items order by id')).toEqual([
      { name: 'a', qty: 1 },
      { name: 'c', qty: 3 },
    ]);
  });

  it('write() applies several statements as one unit: all or nothing', async () => {
    const db = await withItems();
    const [first, second] = await db.write((k) => [
      k.insertInto('items').values({ name: 'x', qty: 1 }),
      k.insertInto('items').values({ name: 'y', qty: 2 }).returning(['id', 'name']),
    ]);
    expect(first.numAffectedRows).toBe(1n);
    expect(first.insertId).toBe(1n);
    expect(second.rows).toEqual([{ id: 2, name: 'y' }]);
    await expect(
      db.write((k) => [
        k.insertInto('items').values({ name: 'z', qty: 1 }),
        k.insertInto('items').values({ name: 'x', qty: 1 }),
      ]),
    ).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE' });
    expect(readFresh(db.path, "select count(*) as n from items where name = 'z'")).toEqual([
      { n: 0 },
    ]);
  });

  it('keeps submission order across critical and deferred units', async () => {
    const db = await openTemp<DB>({ deferredFlushMs: 5 });
    await sql`create table seq (n integer not null, kind text not null)`.execute(db.kysely);
    const work: Promise<unknown>[] = [];
    for (let n = 0; n < 600; n++) {
      // A pseudo-random mix, so that batches hold runs of each kind in every arrangement.
      const critical = (n * 7919) % 5 < 2;
      if (critical) work.push(db.kysely.insertInto('seq').values({ n, kind: 'c' }).execute());
      else work.push(db.defer((k) => k.insertInto('seq').values({ n, kind: 'd' })));
      if (n % 97 === 0) await delay(1);
    }
    await Promise.all(work);
    await db.close();
    const rows = readFresh<{ n: number }>(db.path, 'select n from seq order by rowid');
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: 600 }, (_, i) => i));
  });

  it('keeps submission order for transactions started with db.transaction() among write() and defer()', async () => {
    const db = await openTemp<DB>({ deferredFlushMs: 5 });
    await sql`create table seq (n integer not null, kind text not null)`.execute(db.kysely);
    const work: Promise<unknown>[] = [];
    for (let n = 0; n < 90; n++) {
      if (n % 3 === 0) {
        work.push(
          db.transaction(async (trx) => {
            await trx.insertInto('seq').values({ n, kind: 't' }).execute();
          }),
        );
      } else if (n % 3 === 1) {
        work.push(db.defer((k) => k.insertInto('seq').values({ n, kind: 'd' })));
      } else {
        work.push(db.write((k) => k.insertInto('seq').values({ n, kind: 'w' })));
      }
    }
    await Promise.all(work);
    await db.close();
    const rows = readFresh<{ n: number }>(db.path, 'select n from seq order by rowid');
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: 90 }, (_, i) => i));
  });

  it('drains a db.transaction() called before close() in the same tick, and refuses one called after', async () => {
    const db = await openTemp<DB>();
    await sql`create table seq (n integer not null, kind text not null)`.execute(db.kysely);
    const before = db.transaction(async (trx) => {
      await trx.insertInto('seq').values({ n: 1, kind: 't' }).execute();
      return 'committed';
    });
    const closing = db.close();
    const after = db.transaction(async (trx) => {
      await trx.insertInto('seq').values({ n: 2, kind: 't' }).execute();
    });
    const [b, a] = await Promise.allSettled([before, after]);
    expect(b).toEqual({ status: 'fulfilled', value: 'committed' });
    expect(a).toMatchObject({ status: 'rejected', reason: { code: 'CLOSED' } });
    await closing;
    expect(readFresh(db.path, 'select n from seq')).toEqual([{ n: 1 }]);
  });

  it('binds booleans as 0/1 and blobs as Buffers', async () => {
    const db = await openTemp<{ f: { b: number; data: Uint8Array } }>();
    await sql`create table f (b integer, data blob)`.execute(db.kysely);
    await db.kysely
      .insertInto('f')
      .values({ b: true as unknown as number, data: Buffer.from([1, 2, 3]) })
      .execute();
    const row = await db.kysely.selectFrom('f').selectAll().executeTakeFirstOrThrow();
    expect(row.b).toBe(1);
    expect(Buffer.isBuffer(row.data)).toBe(true);
    expect([...row.data]).toEqual([1, 2, 3]);
  });

  it('routes raw SQL: reads to the reader, writes through the queue', async () => {
    const db = await withItems();
    const before = db.stats().units;
    await sql`insert into items (name, qty) values (${'r'}, ${1})`.execute(db.kysely);
    const inserted = await sql<{
      id: number;
    }>`insert into items (name, qty) values ('s', 2) returning id`.execute(db.kysely);
    expect(inserted.rows).toEqual([{ id: 2 }]);
    await sql`pragma user_version = 7`.execute(db.kysely);
    expect(db.stats().units - before).toBe(3);
    const read = await sql<{ n: number }>`select count(*) as n from items`.execute(db.kysely);
    expect(read.rows).toEqual([{ n: 2 }]);
    expect(db.stats().units - before).toBe(3);
    expect(readFresh(db.path, 'pragma user_version')).toEqual([{ user_version: 7 }]);
  });

  it('defer() past a full queue drops units, counted and reported once, without an unhandled rejection', async () => {
    const db = await withItems({
      maxPendingBytes: 1024,
      maxBatchUnits: 2,
      queueTimeoutMs: 1,
      maxWaitingCallers: 3,
    });
    const errors: Error[] = [];
    db.on('error', (e) => errors.push(e));
    const blocker = db.transaction(async () => {
      await delay(100);
    });
    await delay(10);
    for (let i = 0; i < 20; i++)
      void db.defer((k) => k.insertInto('items').values({ name: `q${i}`, qty: i }));
    await blocker;
    await db.close();
    const { deferredDropped, queueFull } = db.stats();
    expect(deferredDropped).toBeGreaterThan(0);
    expect(queueFull).toBe(deferredDropped);
    // Reported once per second at most, not once per unit.
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.length).toBeLessThan(deferredDropped);
    expect(errors.every((e) => (e as WalguardError).code === 'QUEUE_FULL')).toBe(true);
    const n = readFresh<{ n: number }>(db.path, 'select count(*) as n from items')[0]!.n;
    expect(n + deferredDropped).toBe(20);
  });

  it('routes raw vector-index DDL (which writes while it is prepared) to the writer', async () => {
    const db = await openTemp();
    await sql`create table v (id integer primary key, e F32_BLOB(3))`.execute(db.kysely);
    await sql`create index v_idx on v (libsql_vector_idx(e))`.execute(db.kysely);
    await sql`insert into v (e) values (vector32('[1,0,0]'))`.execute(db.kysely);
    const near = await sql<{
      id: number;
    }>`select id from vector_top_k('v_idx', vector32('[1,0,0]'), 1)`.execute(db.kysely);
    expect(near.rows).toEqual([{ id: 1 }]);
  });

  it('defer() never raises an unhandled rejection; its errors reach the error event and stats', async () => {
    const db = await withItems({ deferredFlushMs: 1 });
    const errors: Error[] = [];
    db.on('error', (e) => errors.push(e));
    void db.defer((k) => k.insertInto('items').values({ name: 'dup', qty: 1 }));
    void db.defer((k) => k.insertInto('items').values({ name: 'dup', qty: 1 }));
    void db.defer(() => {
      throw new Error('builder blew up');
    });
    await db.kysely.insertInto('items').values({ name: 'flush', qty: 1 }).execute();
    expect(errors.map((e) => (e as SqliteError).code)).toEqual([
      'SQLITE_ERROR',
      'SQLITE_CONSTRAINT_UNIQUE',
    ]);
    expect(db.stats().deferredErrors).toBe(1);
    await db.close();
    // After close: refused, reported, and still no unhandled rejection.
    void db.defer((k) => k.insertInto('items').values({ name: 'late', qty: 1 }));
    await expect(
      db.defer((k) => k.insertInto('items').values({ name: 'late', qty: 1 })),
    ).rejects.toMatchObject({
      code: 'CLOSED',
    });
  });
});

describe('the Kysely driver', () => {
  it('reuses its connection routers: Kysely keeps every connection it saw, so one per query would leak', async () => {
    const db = await withItems();
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          round % 2 === 0
            ? db.kysely
                .insertInto('items')
                .values({ name: `r${round}-${i}`, qty: i })
                .execute()
            : db.kysely.selectFrom('items').selectAll().limit(1).execute(),
        ),
      );
    }
    // Plain queries share one stateless router; transactions take one each from the pool.
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        db.kysely.transaction().execute((trx) =>
          trx
            .insertInto('items')
            .values({ name: `t${i}`, qty: i })
            .execute(),
        ),
      ),
    );
    expect(db.routers.created).toBeGreaterThan(0);
    expect(db.routers.created).toBeLessThanOrEqual(30);
    expect(db.dialect.drivers.reduce((n, d) => n + d.created, 0)).toBe(0);
  });
});

describe('reads', () => {
  it('do not wait for the writer, and see every write that resolved', async () => {
    const db = await withItems({ transactionTimeoutMs: 10_000 });
    await db.kysely.insertInto('items').values({ name: 'before', qty: 1 }).execute();
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let inside!: () => void;
    const entered = new Promise<void>((r) => {
      inside = r;
    });
    const tx = db.transaction(async (trx) => {
      await trx.insertInto('items').values({ name: 'in-tx', qty: 1 }).execute();
      inside();
      await held;
    });
    await entered;
    const started = performance.now();
    const rows = await db.kysely.selectFrom('items').select('name').execute();
    expect(performance.now() - started).toBeLessThan(1000);
    // The open transaction's write is not visible outside it.
    expect(rows.map((r) => r.name)).toEqual(['before']);
    release();
    await tx;
    const after = await db.kysely.selectFrom('items').select('name').orderBy('id').execute();
    expect(after.map((r) => r.name)).toEqual(['before', 'in-tx']);
  });

  it('streams select queries in chunks', async () => {
    const db = await withItems();
    await db.write((k) =>
      Array.from({ length: 250 }, (_, i) =>
        k.insertInto('items').values({ name: `s${i}`, qty: i }),
      ),
    );
    let count = 0;
    for await (const row of db.kysely.selectFrom('items').selectAll().orderBy('id').stream(50)) {
      expect(row.qty).toBe(count);
      count++;
    }
    expect(count).toBe(250);
  });
});

describe('interactive transactions', () => {
  it('see their own writes, commit durably, and roll back alone on error', async () => {
    const db = await withItems();
    const results = await Promise.allSettled([
      db.transaction(async (trx) => {
        await trx.insertInto('items').values({ name: 't1', qty: 1 }).execute();
        const row = await trx
          .selectFrom('items')
          .select('qty')
          .where('name', '=', 't1')
          .executeTakeFirstOrThrow();
        await trx
          .updateTable('items')
          .set({ qty: row.qty + 10 })
          .where('name', '=', 't1')
          .execute();
        return row.qty;
      }),
      db.transaction(async (trx) => {
        await trx.insertInto('items').values({ name: 't2', qty: 1 }).execute();
        throw new Error('changed my mind');
      }),
      db.kysely.insertInto('items').values({ name: 'plain', qty: 5 }).execute(),
    ]);
    expect(results[0]).toEqual({ status: 'fulfilled', value: 1 });
    expect(results[1]).toMatchObject({
      status: 'rejected',
      reason: { message: 'changed my mind' },
    });
    expect(results[2]!.status).toBe('fulfilled');
    expect(readFresh(db.path, 'select name, qty from items order by name')).toEqual([
      { name: 'plain', qty: 5 },
      { name: 't1', qty: 11 },
    ]);
  });

  it('support savepoints in controlled transactions', async () => {
    const db = await withItems();
    const trx = await db.kysely.startTransaction().execute();
    await trx.insertInto('items').values({ name: 'kept', qty: 1 }).execute();
    const sp = await trx.savepoint('sp1').execute();
    await sp.insertInto('items').values({ name: 'undone', qty: 1 }).execute();
    await sp.rollbackToSavepoint('sp1').execute();
    const sp2 = await trx.savepoint('sp2').execute();
    await sp2.insertInto('items').values({ name: 'released', qty: 1 }).execute();
    await sp2.releaseSavepoint('sp2').execute();
    await trx.commit().execute();
    expect(readFresh(db.path, 'select name from items order by id')).toEqual([
      { name: 'kept' },
      { name: 'released' },
    ]);
  });

  it('time out with TX_TIMEOUT, roll back, and let the queue go on', async () => {
    const db = await withItems({ transactionTimeoutMs: 100 });
    const slow = db.transaction(async (trx) => {
      await trx.insertInto('items').values({ name: 'slow', qty: 1 }).execute();
      await delay(300);
      await trx.insertInto('items').values({ name: 'slow2', qty: 1 }).execute();
    });
    const other = db.kysely.insertInto('items').values({ name: 'other', qty: 1 }).execute();
    await expect(slow).rejects.toMatchObject({ code: 'TX_TIMEOUT' });
    await other;
    expect(readFresh(db.path, 'select name from items')).toEqual([{ name: 'other' }]);
  });

  it('work through a Kysely built on db.dialect with plugins', async () => {
    type Notes = { userNotes: { noteId: Generated<number>; noteText: string } };
    const db = await openTemp<Notes>();
    const camel = new Kysely<Notes>({
      dialect: db.dialect,
      plugins: [new CamelCasePlugin(), db.orderingPlugin],
    });
    await camel.schema
      .createTable('userNotes')
      .addColumn('noteId', 'integer', (c) => c.primaryKey())
      .addColumn('noteText', 'text')
      .execute();
    const inserted = await camel
      .insertInto('userNotes')
      .values({ noteText: 'hi' })
      .executeTakeFirst();
    expect(inserted.insertId).toBe(1n);
    await camel.transaction().execute(async (trx) => {
      await trx.insertInto('userNotes').values({ noteText: 'in tx' }).execute();
    });
    expect(await camel.selectFrom('userNotes').selectAll().orderBy('noteId').execute()).toEqual([
      { noteId: 1, noteText: 'hi' },
      { noteId: 2, noteText: 'in tx' },
    ]);
    expect(readFresh(db.path, 'select note_text from user_notes where note_id = 2')).toEqual([
      { note_text: 'in tx' },
    ]);
  });
});

describe('db.kysely with plugins', () => {
  it("withPlugin() takes Kysely's full path: the plugin transforms queries and results, writes stay durable and ordered", async () => {
    type Notes = { userNotes: { noteId: Generated<number>; noteText: string } };
    const db = await openTemp<Notes>();
    const camel = db.kysely.withPlugin(new CamelCasePlugin());
    await camel.schema
      .createTable('userNotes')
      .addColumn('noteId', 'integer', (c) => c.primaryKey())
      .addColumn('noteText', 'text')
      .execute();
    const writes = [
      camel.insertInto('userNotes').values({ noteText: 'a' }).execute(),
      db.write(() => CompiledQuery.raw("insert into user_notes (note_text) values ('b')")),
      camel.insertInto('userNotes').values({ noteText: 'c' }).execute(),
    ];
    await Promise.all(writes);
    expect(await camel.selectFrom('userNotes').selectAll().orderBy('noteId').execute()).toEqual([
      { noteId: 1, noteText: 'a' },
      { noteId: 2, noteText: 'b' },
      { noteId: 3, noteText: 'c' },
    ]);
    expect(readFresh(db.path, 'select note_text from user_notes order by note_id')).toEqual([
      { note_text: 'a' },
      { note_text: 'b' },
      { note_text: 'c' },
    ]);
  });
});

describe('close()', () => {
  it('drains everything queued, truncates the WAL, and rejects new work with CLOSED', async () => {
    const db = await withItems({ deferredFlushMs: 10_000 });
    const critical = Array.from({ length: 50 }, (_, i) =>
      db.kysely
        .insertInto('items')
        .values({ name: `c${i}`, qty: i })
        .execute(),
    );
    for (let i = 0; i < 50; i++)
      void db.defer((k) => k.insertInto('items').values({ name: `d${i}`, qty: i }));
    expect(db.stats().deferredPending).toBeGreaterThan(0);
    const closing = db.close();
    expect(db.close()).toBe(closing);
    await closing;
    await Promise.all(critical);
    const wal = `${db.path}-wal`;
    expect(!fs.existsSync(wal) || fs.statSync(wal).size === 0).toBe(true);
    expect(readFresh(db.path, 'select count(*) as n from items')).toEqual([{ n: 100 }]);
    await expect(
      db.kysely.insertInto('items').values({ name: 'late', qty: 1 }).execute(),
    ).rejects.toMatchObject({
      code: 'CLOSED',
    });
    await expect(db.kysely.selectFrom('items').selectAll().execute()).rejects.toBeInstanceOf(
      WalguardError,
    );
    await expect(
      db.write((k) => k.insertInto('items').values({ name: 'late', qty: 1 })),
    ).rejects.toMatchObject({
      code: 'CLOSED',
    });
    await expect(db.transaction(async () => {})).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('parameter binding', () => {
  it('binds integral numbers as INTEGER, not REAL (libsql binds every JS number as REAL)', async () => {
    const db = await openTemp<{ v: { anything: unknown; label: string } }>();
    await sql`create table v (anything, label text)`.execute(db.kysely);
    await db.kysely
      .insertInto('v')
      .values({ anything: 2, label: 7 as unknown as string })
      .execute();
    await db.kysely.insertInto('v').values({ anything: 2.5, label: 'x' }).execute();
    const rows = await sql<{
      t: string;
      label: string;
    }>`select typeof(anything) as t, label from v order by rowid`.execute(db.kysely);
    expect(rows.rows).toEqual([
      { t: 'integer', label: '7' },
      { t: 'real', label: 'x' },
    ]);
    const read = await sql<{ t: string }>`select typeof(${3}) as t`.execute(db.kysely);
    expect(read.rows).toEqual([{ t: 'integer' }]);
  });
});

describe('observability and configuration', () => {
  it('publishes open, commit, checkpoint and close on node:diagnostics_channel', async () => {
    const dc = await import('node:diagnostics_channel');
    const seen: string[] = [];
    const names = ['walguard:open', 'walguard:commit', 'walguard:checkpoint', 'walguard:close'];
    const listeners = names.map((name) => {
      const listener = (message: unknown) =>
        seen.push(`${name}:${(message as { path: string }).path}`);
      dc.subscribe(name, listener);
      return [name, listener] as const;
    });
    try {
      const db = await withItems();
      await db.kysely.insertInto('items').values({ name: 'x', qty: 1 }).execute();
      await db.checkpoint();
      await db.close();
      for (const name of names) expect(seen).toContain(`${name}:${db.path}`);
    } finally {
      for (const [name, listener] of listeners) dc.unsubscribe(name, listener);
    }
  });

  it('openDatabase({ config }) reads the YAML file; explicit options win', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'database.yaml');
    fs.writeFileSync(
      config,
      `path: ${path.join(dir, 'from-config.db')}\nsynchronous: EXTRA\nbusyTimeoutMs: 4321\n`,
    );
    const db = await openDatabase({
      config,
      logger: false,
      busyTimeoutMs: 1111,
      handleSignals: false,
    });
    try {
      expect(db.options.path).toBe(path.join(dir, 'from-config.db'));
      expect(await db.writerPragma('synchronous')).toBe(3);
      expect(await db.writerPragma('busy_timeout')).toBe(1111);
    } finally {
      await db.close();
    }
    fs.writeFileSync(config, `path: x.db\nsynchronus: FULL\n`);
    await expect(openDatabase({ config, logger: false })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('synchronous'),
    });
  });
});
