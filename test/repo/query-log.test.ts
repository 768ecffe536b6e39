/**
 * Transactions show in Kysely's `log` callback as Kysely's own SQLite dialect logs them:
 * `begin`, the statements, then `commit` or `rollback`.
 */
import { Kysely, type LogEvent } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openTemp } from '../helpers.js';

interface DB {
  t: { n: number };
}

async function withTable(options: Parameters<typeof openTemp>[0] = {}) {
  const db = await openTemp<DB>(options);
  await db.write((k) => k.schema.createTable('t').addColumn('n', 'integer'));
  return db;
}

const sqlOf = (events: LogEvent[]) => events.map((e) => e.query.sql);

describe("transactions in Kysely's query log", () => {
  it('a Kysely built on db.dialect logs begin/commit and begin/rollback around the statements', async () => {
    const db = await withTable();
    const events: LogEvent[] = [];
    const k = new Kysely<DB>({ dialect: db.dialect, log: (e) => void events.push(e) });
    await k.transaction().execute(async (trx) => {
      await trx.insertInto('t').values({ n: 1 }).execute();
    });
    const trx = await k.startTransaction().execute();
    await trx.insertInto('t').values({ n: 2 }).execute();
    await trx.rollback().execute();
    expect(sqlOf(events)).toEqual([
      'begin',
      'insert into "t" ("n") values (?)',
      'commit',
      'begin',
      'insert into "t" ("n") values (?)',
      'rollback',
    ]);
    expect(events.every((e) => e.level === 'query')).toBe(true);
  });

  it('db.kysely and db.transaction() log to the kyselyLog option', async () => {
    const events: LogEvent[] = [];
    const db = await withTable({ kyselyLog: (e) => void events.push(e) });
    events.length = 0;
    await db.kysely.insertInto('t').values({ n: 1 }).execute();
    await db.transaction(async (trx) => {
      await trx.selectFrom('t').selectAll().execute();
    });
    const trx = await db.kysely.startTransaction().execute();
    await trx.rollback().execute();
    expect(sqlOf(events)).toEqual([
      'insert into "t" ("n") values (?)',
      'begin',
      'select * from "t"',
      'commit',
      'begin',
      'rollback',
    ]);
  });

  it('a failed statement is logged at level error', async () => {
    const events: LogEvent[] = [];
    const db = await withTable({ kyselyLog: ['error'] as const });
    const k = new Kysely<DB>({ dialect: db.dialect, log: (e) => void events.push(e) });
    await expect(
      k
        .insertInto('nowhere' as 't')
        .values({ n: 1 })
        .execute(),
    ).rejects.toThrow();
    expect(events.map((e) => e.level)).toEqual(['error']);
  });
});
