import { type Generated, sql } from 'kysely';
import { expect, it } from 'vitest';
import {
  openDatabase,
  PostgresError,
  runMigrations,
  type Walguard,
  type WalguardError,
} from '../../src/index.js';
import { rejection } from '../helpers.js';
import { readFreshPg } from './cluster.js';
import { describePg, freshUrl, openPg } from './pg-helpers.js';

interface DB {
  t: { id: Generated<number>; v: string; n: Generated<number> };
}

async function setup(options: Parameters<typeof openPg>[0] = {}) {
  const db = await openPg<DB>(options);
  await sql`create table t (id bigserial primary key, v text not null unique, n int not null default 0)`.execute(
    db.kysely,
  );
  return db;
}

const insert = (db: Walguard<DB>, v: string, n = 0) =>
  db.write((k) => k.insertInto('t').values({ v, n }));

/** Commits the server counted for this database. */
async function serverCommits(url: string): Promise<number> {
  const [row] = await readFreshPg<{ n: number }>(
    url,
    'select xact_commit as n from pg_stat_database where datname = current_database()',
  );
  return row!.n;
}

describePg('PostgreSQL writer', () => {
  it('a failing unit is rejected alone; the rest of its batch commits, all or nothing per unit', async () => {
    const db = await setup();
    await insert(db, 'taken');
    // One batch: units 2 and 5 fail (unit 2 at its second statement), the others commit.
    const results = await Promise.allSettled([
      insert(db, 'a'),
      db.write((k) => [
        k.insertInto('t').values({ v: 'b-first' }),
        k.insertInto('t').values({ v: 'taken' }),
      ]),
      insert(db, 'c'),
      db.write((k) => [
        k.insertInto('t').values({ v: 'd1' }),
        k.insertInto('t').values({ v: 'd2' }),
      ]),
      insert(db, 'c'),
      insert(db, 'e'),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    const failed = (results[1] as PromiseRejectedResult).reason;
    expect(failed).toBeInstanceOf(PostgresError);
    expect(failed).toMatchObject({ code: '23505', constraint: 't_v_key' });
    expect((results[4] as PromiseRejectedResult).reason).toMatchObject({ code: '23505' });
    const rows = await readFreshPg<{ v: string }>(db.url, 'select v from t order by id');
    expect(rows.map((r) => r.v)).toEqual(['taken', 'a', 'c', 'd1', 'd2', 'e']);
    expect(db.stats()).toMatchObject({ failedUnits: 2, failedBatches: 0 });
    // A unit alone in its batch (no BEGIN/COMMIT of the writer's) is all or nothing too.
    const alone = await db
      .write((k) => [k.insertInto('t').values({ v: 'lone' }), k.insertInto('t').values({ v: 'a' })])
      .catch((e) => e);
    expect(alone).toMatchObject({ code: '23505' });
    expect(await readFreshPg(db.url, "select count(*) as n from t where v = 'lone'")).toEqual([
      { n: 0 },
    ]);
  });

  it('a deferred constraint that fails at COMMIT rejects only the unit that broke it', async () => {
    const db = await setup();
    await sql`create table child (id int primary key, parent bigint not null
      references t (id) deferrable initially deferred)`.execute(db.kysely);
    const parent = await db.write((k) => k.insertInto('t').values({ v: 'p' }).returning('id'));
    const id = Number(parent.rows[0]!.id);
    const raw = (text: string) => db.write(() => sql.raw(text).compile(db.kysely));
    const results = await Promise.allSettled([
      raw(`insert into child values (1, ${id})`),
      // A unit may insert a child before its parent: checked at the end of the unit.
      db.write((k) => [
        sql.raw(`insert into child values (2, ${id + 1})`).compile(k),
        k.insertInto('t').values({ id: id + 1, v: 'late parent' }),
      ]),
      raw(`insert into child values (3, ${id + 999})`),
      raw(`insert into child values (4, ${id})`),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({ code: '23503' });
    expect(await readFreshPg(db.url, 'select id from child order by id')).toEqual([
      { id: 1 },
      { id: 2 },
      { id: 4 },
    ]);
  });

  it('units are applied in submission order, critical and deferred alike', async () => {
    const db = await setup({ deferredFlushMs: 5 });
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const v = `u${i}`;
      writes.push(
        i % 3 === 0
          ? db.defer((k) => k.insertInto('t').values({ v, n: i }))
          : db.write((k) => k.insertInto('t').values({ v, n: i })),
      );
    }
    await Promise.all(writes);
    await db.close();
    const rows = await readFreshPg<{ n: number }>(db.url, 'select n from t order by id');
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it('batches share commits: the server counts far fewer commits than units', async () => {
    const db = await setup();
    const before = await serverCommits(db.url);
    await Promise.all(Array.from({ length: 400 }, (_, i) => insert(db, `x${i}`)));
    const commits = db.stats().commits;
    expect(commits).toBeLessThan(100);
    // Reads and this query commit too; the writer's share is what stats() counted.
    expect((await serverCommits(db.url)) - before).toBeLessThan(400);
  });

  it('deferred units are flushed by close() and are then durable', async () => {
    const db = await setup({ deferredFlushMs: 60_000 });
    for (let i = 0; i < 50; i++) void db.defer((k) => k.insertInto('t').values({ v: `d${i}` }));
    expect(await readFreshPg(db.url, 'select count(*) as n from t')).toEqual([{ n: 0 }]);
    expect(db.stats().deferredPending).toBe(50);
    await db.close();
    expect(await readFreshPg(db.url, 'select count(*) as n from t')).toEqual([{ n: 50 }]);
  });

  it('the queue stays bounded while the writer is held; past the bound callers get QUEUE_FULL', async () => {
    const db = await setup({ maxPendingUnits: 4, maxWaitingCallers: 2, queueTimeoutMs: 60_000 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started!: () => void;
    const inside = new Promise<void>((resolve) => {
      started = resolve;
    });
    const tx = db.transaction(async (trx) => {
      await trx.insertInto('t').values({ v: 'tx' }).execute();
      started();
      await held;
    });
    await inside;
    const writes = Array.from({ length: 10 }, (_, i) => insert(db, `q${i}`));
    const settled = Promise.allSettled(writes);
    await new Promise((r) => setTimeout(r, 50));
    expect(db.stats().pending).toBeLessThanOrEqual(4 + 2 + 1);
    release();
    await tx;
    const outcomes = await settled;
    const full = outcomes.filter(
      (o) => o.status === 'rejected' && (o.reason as WalguardError).code === 'QUEUE_FULL',
    );
    expect(full.length).toBe(4);
    expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBe(6);
    expect(await readFreshPg(db.url, 'select count(*) as n from t')).toEqual([{ n: 7 }]);
  });

  it('a unit that would end, start or escape the batch transaction is refused alone and nothing else is touched', async () => {
    const db = await setup();
    const units = [
      insert(db, 'a'),
      db.write(() => sql`COMMIT`.compile(db.kysely)),
      db.write(() => sql`/* sneaky */ rollback`.compile(db.kysely)),
      db.write(() => sql`SET synchronous_commit = off`.compile(db.kysely)),
      db.write(() => sql`savepoint wg_anchor`.compile(db.kysely)),
      db.write(() => sql`select set_config('synchronous_commit', 'off', false)`.compile(db.kysely)),
      insert(db, 'b'),
    ];
    const results = await Promise.allSettled(units);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'rejected',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    for (const r of results.slice(1, 6)) {
      expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await readFreshPg(db.url, 'select v from t order by id')).toEqual([
      { v: 'a' },
      { v: 'b' },
    ]);
    expect(db.stats().settings.writer).toMatchObject({ synchronous_commit: 'on' });
    // Several commands in one text are refused by the server (one command per statement).
    const two = await db
      .write(() => sql`select 1; delete from t`.compile(db.kysely))
      .catch((e) => e);
    expect(two).toMatchObject({ code: '42601' });
    expect(await readFreshPg(db.url, 'select count(*) as n from t')).toEqual([{ n: 2 }]);
  });

  it('interactive transactions: commit, rollback, a failed statement, and the timeout', async () => {
    const db = await setup({ transactionTimeoutMs: 300 });
    const count = await db.transaction(async (trx) => {
      await trx.insertInto('t').values({ v: 'in-tx' }).execute();
      const row = await trx
        .selectFrom('t')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      return row.n;
    });
    expect(Number(count)).toBe(1);
    await expect(
      db.transaction(async (trx) => {
        await trx.insertInto('t').values({ v: 'rolled-back' }).execute();
        throw new Error('app says no');
      }),
    ).rejects.toThrow('app says no');
    // A statement fails and the app carries on regardless: the commit is refused, as the
    // transaction is aborted (PostgreSQL would silently turn the COMMIT into a ROLLBACK).
    await expect(
      db.transaction(async (trx) => {
        await trx.insertInto('t').values({ v: 'half' }).execute();
        await trx
          .insertInto('t')
          .values({ v: 'in-tx' })
          .execute()
          .catch(() => {});
      }),
    ).rejects.toMatchObject({ code: '23505', message: expect.stringContaining('rolled back') });
    const timedOut = await rejection(
      db.transaction(async (trx) => {
        await trx.insertInto('t').values({ v: 'slow' }).execute();
        await sql`select pg_sleep(5)`.execute(trx);
      }),
    );
    expect(timedOut.code).toBe('TX_TIMEOUT');
    await insert(db, 'after');
    expect(await readFreshPg(db.url, 'select v from t order by id')).toEqual([
      { v: 'in-tx' },
      { v: 'after' },
    ]);
  });

  it('errors: SQLSTATE in code, CLOSED after close, UNSUPPORTED file services, INVALID_OPTION file options', async () => {
    const db = await setup();
    const e = await db.kysely
      .insertInto('t')
      .values({ v: null as never })
      .execute()
      .catch((x) => x);
    expect(e).toBeInstanceOf(PostgresError);
    expect(e).toMatchObject({ code: '23502', column: 'v' });
    await expect(db.checkpoint()).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await expect(db.backup()).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await expect(db.check()).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await db.close();
    expect((await rejection(insert(db, 'late'))).code).toBe('CLOSED');
    const url = db.url;
    const refused = await rejection(
      openDatabase({ url, path: 'x.db', encryption: { passphrase: 'p' }, logger: false }),
    );
    expect(refused.code).toBe('INVALID_OPTION');
    expect(refused.message).toContain('`path` and `url` are exclusive');
    expect(refused.message).toContain(
      "`encryption` does not apply with `url`: encryption at rest is the server's",
    );
    const threads = await rejection(openDatabase({ url, readers: { threads: 2 }, logger: false }));
    expect(threads.code).toBe('INVALID_OPTION');
    expect(threads.message).toContain('`readers` does not apply with `url`');
    const bad = await rejection(
      openDatabase({
        url: url.replace('postgres@', 'postgres:hunter2@').replace(/\d+\//, '1/'),
        logger: false,
      }),
    );
    expect(bad.code).toBe('IO_ERROR');
    expect(bad.message).not.toContain('hunter2');
  });

  it('two instances migrating one database at once apply each migration exactly once', async () => {
    const url = await freshUrl();
    let runs = 0;
    const set = {
      name: 'app',
      migrations: {
        '001': {
          async up(k: never) {
            runs++;
            await sql`create table m (id int primary key)`.execute(k);
            await sql`select pg_sleep(0.2)`.execute(k);
          },
        },
      },
    };
    const [a, b] = await Promise.all([openPg({ url }), openPg({ url })]);
    const reports = await Promise.all([runMigrations(a, set), runMigrations(b, set)]);
    expect(runs).toBe(1);
    expect(reports.map((r) => r.ran.length).sort()).toEqual([0, 1]);
    expect(await readFreshPg(url, 'select name from kysely_migration')).toEqual([{ name: '001' }]);
  });
});
