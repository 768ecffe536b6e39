/**
 * EXPLAIN and EXPLAIN QUERY PLAN of any statement work and leave both connections clean
 * (libsql 0.5.29 leaves an EXPLAIN statement unreset after `.all()`: on the writer that blocks
 * every later COMMIT; on the reader it pins an old snapshot).
 */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { batchFatalCode } from '../../src/errors.js';
import { openTemp, readFresh } from '../helpers.js';

interface DB {
  t: { id: number; v: string };
}

async function withTable() {
  const db = await openTemp<DB>();
  await db.write((k) =>
    k.schema
      .createTable('t')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('v', 'text'),
  );
  return db;
}

describe('EXPLAIN', () => {
  it('of an insert, update and delete built with Kysely runs, and later writes still commit', async () => {
    const db = await withTable();
    // Kysely's explain() of a write resolves with the write's result shape on SQLite.
    await db.kysely.insertInto('t').values({ id: 1, v: 'a' }).explain();
    await db.kysely.updateTable('t').set({ v: 'b' }).where('id', '=', 1).explain();
    await db.kysely.deleteFrom('t').where('id', '=', 1).explain();
    const program = await sql<{
      opcode: string;
    }>`explain insert into t (id, v) values (1, 'a')`.execute(db.kysely);
    expect(program.rows.map((r) => r.opcode)).toContain('Insert');
    // Nothing was written by the EXPLAINs themselves.
    expect(readFresh(db.path, 'select count(*) as n from t')).toEqual([{ n: 0 }]);
    await db.kysely.insertInto('t').values({ id: 2, v: 'after' }).execute();
    const rows = await db.kysely.selectFrom('t').selectAll().execute();
    expect(rows).toEqual([{ id: 2, v: 'after' }]);
    await db.close();
    expect(readFresh(db.path, 'select v from t')).toEqual([{ v: 'after' }]);
  });

  it('EXPLAIN QUERY PLAN through sql`` and inside a transaction leaves reads fresh and the writer usable', async () => {
    const db = await withTable();
    const eqp = await sql<{
      detail: string;
    }>`explain query plan select * from t where id = ${1}`.execute(db.kysely);
    expect(eqp.rows[0]?.detail).toContain('t');
    await sql`explain insert into t (id, v) values (5, 'x')`.execute(db.kysely);
    await db.transaction(async (trx) => {
      await trx.insertInto('t').values({ id: 3, v: 'in-tx' }).explain();
      await trx.insertInto('t').values({ id: 3, v: 'in-tx' }).execute();
    });
    await db.kysely.insertInto('t').values({ id: 4, v: 'later' }).execute();
    // A read after the write resolved sees it: the reader holds no old snapshot.
    const ids = (await db.kysely.selectFrom('t').select('id').orderBy('id').execute()).map(
      (r) => r.id,
    );
    expect(ids).toEqual([3, 4]);
    const checkpoint = await db.checkpoint('TRUNCATE');
    expect(checkpoint.busy).toBe(false);
  });

  it('a stream left early does not pin the reader to an old snapshot', async () => {
    const db = await withTable();
    await db.write((k) =>
      k.insertInto('t').values(Array.from({ length: 300 }, (_, id) => ({ id, v: `r${id}` }))),
    );
    for await (const _row of db.kysely.selectFrom('t').selectAll().stream(10)) break;
    await db.kysely.insertInto('t').values({ id: 1000, v: 'after' }).execute();
    const count = await db.kysely
      .selectFrom('t')
      .select((e) => e.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(count.n).toBe(301);
    expect((await db.checkpoint('TRUNCATE')).busy).toBe(false);
  });

  it("LOCKED is kept for another process: the writer's own 'statements in progress' is not LOCKED", () => {
    const own = Object.assign(new Error('cannot commit transaction - SQL statements in progress'), {
      code: 'SQLITE_BUSY',
    });
    expect(batchFatalCode(own)).not.toBe('LOCKED');
    const table = Object.assign(new Error('database table is locked'), { code: 'SQLITE_LOCKED' });
    expect(batchFatalCode(table)).not.toBe('LOCKED');
    const other = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    expect(batchFatalCode(other)).toBe('LOCKED');
  });
});
