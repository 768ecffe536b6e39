/**
 * Contract line 2: a unit is all or nothing whatever the schema, triggers or statement say,
 * and a conflict resolution that ends the batch's transaction fails that unit alone.
 */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { SqliteError } from '../../src/index.js';
import { openTemp, readFresh } from '../helpers.js';

interface DB {
  t: { v: number };
  log: { n: number };
}

/** The first column of a query's rows, read through a fresh connection. */
function column(file: string, query: string): unknown[] {
  return readFresh(file, query).map((row) => Object.values(row)[0]);
}

/** A database with `schema` applied and the row v = 5 in `t`. */
async function withSchema(...schema: string[]) {
  const db = await openTemp<DB>();
  for (const statement of schema) await sql.raw(statement).execute(db.kysely);
  await db.kysely.insertInto('t').values({ v: 5 }).execute();
  return db;
}

/** `count` units submitted in the same tick (one batch); unit `bad` conflicts with row 5. */
function burst(db: Awaited<ReturnType<typeof openTemp<DB>>>, count: number, bad: number) {
  return Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      db.kysely
        .insertInto('t')
        .values(i === bad ? [{ v: 1000 + i }, { v: 5 }] : [{ v: 1000 + i }])
        .execute(),
    ),
  );
}

describe('unit atomicity against the schema', () => {
  it("a table's ON CONFLICT FAIL cannot leave half of a multi-row insert unit behind", async () => {
    const db = await withSchema('create table t (v integer unique on conflict fail)');
    const failing = db.kysely
      .insertInto('t')
      .values([{ v: 1 }, { v: 2 }, { v: 5 }, { v: 6 }])
      .execute();
    await expect(failing).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE' });
    expect(column(db.path, 'select v from t order by v')).toEqual([5]);
  });

  it('a NOT NULL ON CONFLICT FAIL column keeps an UPDATE unit all or nothing', async () => {
    const db = await openTemp<DB>();
    await sql`create table t (v integer, w integer not null on conflict fail)`.execute(db.kysely);
    await sql`insert into t (v, w) values (1, 1), (2, 2), (3, 3), (4, 4)`.execute(db.kysely);
    const failing = sql`update t set w = case when v = 3 then null else w + 10 end`.execute(
      db.kysely,
    );
    await expect(failing).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_NOTNULL' });
    expect(column(db.path, 'select w from t order by v')).toEqual([1, 2, 3, 4]);
  });

  it("a table's ON CONFLICT ROLLBACK fails that unit alone, with its own code; the batch's other units commit", async () => {
    const db = await withSchema('create table t (v integer unique on conflict rollback)');
    const results = await burst(db, 11, 6);
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 'fulfilled')).toHaveLength(10);
    const failed = results[6] as PromiseRejectedResult;
    expect(failed.status).toBe('rejected');
    expect(failed.reason).toBeInstanceOf(SqliteError);
    expect(failed.reason).toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE' });
    expect(column(db.path, 'select v from t order by v')).toEqual([
      5, 1000, 1001, 1002, 1003, 1004, 1005, 1007, 1008, 1009, 1010,
    ]);
  });

  it('an INSERT OR ROLLBACK statement and a trigger that raises ROLLBACK fail their unit alone', async () => {
    const db = await withSchema(
      'create table t (v integer unique)',
      'create table log (n integer)',
      "create trigger no_13 before insert on log when new.n = 13 begin select raise(rollback, 'unlucky'); end",
    );
    const results = await Promise.allSettled([
      db.kysely.insertInto('log').values({ n: 1 }).execute(),
      sql`insert or rollback into t (v) values (7), (5)`.execute(db.kysely),
      db.kysely.insertInto('log').values({ n: 2 }).execute(),
      db.write((k) => [
        k.insertInto('log').values({ n: 3 }),
        k.insertInto('log').values({ n: 13 }),
      ]),
      db.kysely.insertInto('log').values({ n: 4 }).execute(),
      db.defer((k) => k.insertInto('log').values({ n: 5 })),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({
      code: 'SQLITE_CONSTRAINT_UNIQUE',
    });
    expect((results[3] as PromiseRejectedResult).reason).toMatchObject({
      code: 'SQLITE_CONSTRAINT_TRIGGER',
      message: expect.stringContaining('unlucky'),
    });
    await db.close();
    expect(column(db.path, 'select v from t order by v')).toEqual([5]);
    expect(column(db.path, 'select n from log order by n')).toEqual([1, 2, 4, 5]);
  });

  it("an interactive transaction never shares its transaction with a later unit that a table's ROLLBACK clause could undo", async () => {
    const db = await withSchema(
      'create table t (v integer unique on conflict rollback)',
      'create table log (n integer)',
    );
    const results = await Promise.allSettled([
      db.kysely.insertInto('log').values({ n: 1 }).execute(),
      db.transaction(async (trx) => {
        await trx.insertInto('log').values({ n: 2 }).execute();
      }),
      db.kysely.insertInto('t').values({ v: 5 }).execute(),
      db.kysely.insertInto('log').values({ n: 3 }).execute(),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(column(db.path, 'select n from log order by n')).toEqual([1, 2, 3]);
  });

  it('an interactive transaction undone by a later transaction’s INSERT OR ROLLBACK is rejected, never acknowledged', async () => {
    const db = await withSchema(
      'create table t (v integer unique)',
      'create table log (n integer)',
    );
    const results = await Promise.allSettled([
      db.kysely.insertInto('log').values({ n: 1 }).execute(),
      db.transaction(async (trx) => {
        await trx.insertInto('log').values({ n: 2 }).execute();
      }),
      db.transaction(async (trx) => {
        await trx.insertInto('log').values({ n: 3 }).execute();
        await sql`insert or rollback into t (v) values (5)`.execute(trx);
      }),
      db.kysely.insertInto('log').values({ n: 4 }).execute(),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({
      code: 'SQLITE_ABORT_ROLLBACK',
    });
    expect((results[2] as PromiseRejectedResult).reason).toMatchObject({
      code: 'SQLITE_CONSTRAINT_UNIQUE',
    });
    expect(column(db.path, 'select n from log order by n')).toEqual([1, 4]);
  });
});
