import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openTemp, readFresh } from '../helpers.js';

interface DB {
  t: { id: number; v: string };
  audit: { id: number };
}

describe('Writer', () => {
  it('keeps a single multi-row INSERT OR FAIL all or nothing (it runs under a savepoint)', async () => {
    const db = await openTemp<DB>();
    await sql`create table t (id integer primary key, v text)`.execute(db.kysely);
    await db.kysely.insertInto('t').values({ id: 3, v: 'existing' }).execute();
    // Rows 1 and 2 insert, row 3 conflicts: FAIL would keep rows 1-2 without a savepoint.
    const failing = sql`insert or fail into t (id, v) values (1, 'a'), (2, 'b'), (3, 'c')`.execute(
      db.kysely,
    );
    const other = db.kysely.insertInto('t').values({ id: 10, v: 'other' }).execute();
    await expect(failing).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
    await other;
    expect(readFresh(db.path, 'select id from t order by id')).toEqual([{ id: 3 }, { id: 10 }]);
  });

  it('keeps a single statement all or nothing when a trigger raises FAIL', async () => {
    const db = await openTemp<DB>();
    await sql`create table t (id integer primary key, v text)`.execute(db.kysely);
    await sql`create table audit (id integer)`.execute(db.kysely);
    await sql`create trigger no_bad after insert on t when new.v = 'bad' begin select raise(fail, 'bad row'); end`.execute(
      db.kysely,
    );
    const failing = db.kysely
      .insertInto('t')
      .values([
        { id: 1, v: 'good' },
        { id: 2, v: 'bad' },
      ])
      .execute();
    await expect(failing).rejects.toThrow('bad row');
    expect(readFresh(db.path, 'select count(*) as n from t')).toEqual([{ n: 0 }]);
  });

  it('a failing single-statement unit leaves its batch neighbours committed', async () => {
    const db = await openTemp<DB>();
    await sql`create table t (id integer primary key, v text not null)`.execute(db.kysely);
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        db.kysely
          .insertInto('t')
          .values({ id: i, v: i % 7 === 0 ? (null as unknown as string) : `v${i}` })
          .execute(),
      ),
    );
    const rejected = results.filter((r) => r.status === 'rejected').length;
    expect(rejected).toBe(8);
    expect(readFresh(db.path, 'select count(*) as n from t')).toEqual([{ n: 42 }]);
    expect(db.stats().commits).toBeLessThan(50);
  });
});
