/**
 * Contract line 2: no unit can end, start or escape the batch's transaction, and no
 * statement may change the settings walguard verified at open.
 */
import { CompiledQuery, Kysely, sql } from 'kysely';
import Database from 'libsql';
import { describe, expect, it } from 'vitest';
import { WalguardError } from '../../src/index.js';
import { statementFacts } from '../../src/queue/statement-guard.js';
import { seededRandom } from '../crash/replay.js';
import { openTemp, readFresh, rejection } from '../helpers.js';

interface DB {
  t: { n: number };
}

async function withTable() {
  const db = await openTemp<DB>();
  await db.write((k) => k.schema.createTable('t').addColumn('n', 'integer'));
  return db;
}

/** Eight inserts and `bad` submitted in the same tick: one batch. */
async function amongInserts(db: Awaited<ReturnType<typeof withTable>>, bad: string) {
  const inserts = Array.from({ length: 8 }, (_, n) =>
    db.kysely.insertInto('t').values({ n }).execute(),
  );
  const refused = db.write(() => CompiledQuery.raw(bad));
  const results = await Promise.allSettled([...inserts, refused]);
  return { results, refused: results[8] as PromiseSettledResult<unknown> };
}

describe('statements that would end, start or escape the batch', () => {
  const statements = [
    'COMMIT',
    'end transaction',
    'ROLLBACK',
    'BEGIN',
    'begin immediate',
    'SAVEPOINT x',
    'RELEASE x',
    'release savepoint wg_unit',
    'ROLLBACK TO wg_unit',
    "ATTACH DATABASE 'other.db' AS other",
    'DETACH other',
    'VACUUM',
    "vacuum into 'copy.db'",
    'PRAGMA synchronous = OFF',
    'pragma journal_mode=delete',
    'PRAGMA foreign_keys = 0',
    'PRAGMA query_only = 1',
    'PRAGMA busy_timeout = 1',
    'PRAGMA wal_checkpoint(TRUNCATE)',
    '  /* leading */ -- comment\n ; COMMIT',
    'insert into t (n) values (100); commit',
  ];
  for (const statement of statements) {
    it(`refuses ${JSON.stringify(statement)} before it runs; the other units of its batch commit and are acknowledged truthfully`, async () => {
      const db = await withTable();
      const { results, refused } = await amongInserts(db, statement);
      expect(results.slice(0, 8).map((r) => r.status)).toEqual(Array(8).fill('fulfilled'));
      expect(refused.status).toBe('rejected');
      const error = (refused as PromiseRejectedResult).reason as WalguardError;
      expect(error).toBeInstanceOf(WalguardError);
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toMatch(/refused|not allowed/i);
      await db.close();
      expect(readFresh(db.path, 'select count(*) as n from t')).toEqual([{ n: 8 }]);
    });
  }

  it('the settings read back at open are still in force after a refused PRAGMA through db.kysely', async () => {
    const db = await withTable();
    for (const statement of [
      'PRAGMA synchronous = OFF',
      'PRAGMA query_only = 0',
      'PRAGMA foreign_keys = OFF',
    ]) {
      const error = await rejection(sql.raw(statement).execute(db.kysely));
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.message).toContain(statement.split(' ')[1]!.toLowerCase());
    }
    expect(await db.writerPragma('synchronous')).toBe(2);
    expect(await db.writerPragma('foreign_keys')).toBe(1);
    // The reader stays query-only: a raw write still goes through the queue.
    await sql`insert into t (n) values (1)`.execute(db.kysely);
    expect(db.stats().units).toBeGreaterThanOrEqual(2);
    const read = await sql<{ query_only: number }>`pragma query_only`.execute(db.kysely);
    expect(read.rows).toEqual([{ query_only: 1 }]);
  });

  it('refuses transaction control inside db.transaction() and on a Kysely built on db.dialect; the transaction rolls back alone', async () => {
    const db = await withTable();
    const error = await rejection(
      db.transaction(async (trx) => {
        await trx.insertInto('t').values({ n: 1 }).execute();
        await sql`commit`.execute(trx);
      }),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    const own = new Kysely<DB>({ dialect: db.dialect });
    expect((await rejection(sql`rollback`.execute(own))).code).toBe('INVALID_ARGUMENT');
    await db.kysely.insertInto('t').values({ n: 2 }).execute();
    expect(readFresh(db.path, 'select n from t')).toEqual([{ n: 2 }]);
  });

  it("still allows Kysely's own savepoints, reads of settings, user_version, and table-valued pragmas", async () => {
    const db = await withTable();
    const trx = await db.kysely.startTransaction().execute();
    await trx.insertInto('t').values({ n: 1 }).execute();
    const sp = await trx.savepoint('inner').execute();
    await sp.insertInto('t').values({ n: 2 }).execute();
    await sp.rollbackToSavepoint('inner').execute();
    await trx.commit().execute();
    await sql`pragma user_version = 3`.execute(db.kysely);
    const version = await sql<{ user_version: number }>`pragma user_version`.execute(db.kysely);
    expect(version.rows).toEqual([{ user_version: 3 }]);
    const sync = await sql`pragma synchronous`.execute(db.kysely);
    expect(sync.rows).toEqual([{ synchronous: 2 }]);
    const info = await sql<{ name: string }>`pragma table_info(t)`.execute(db.kysely);
    expect(info.rows.map((r) => r.name)).toEqual(['n']);
    expect(readFresh(db.path, 'select n from t')).toEqual([{ n: 1 }]);
  });
});

describe('the statement guard reads statements as SQLite does', () => {
  it('agrees with SQLite on which statement a text starts with, past spaces, comments and empty statements', () => {
    const db = new Database(':memory:');
    const random = seededRandom(11);
    const pieces = [
      ' ',
      '\t',
      '\n',
      '\v',
      '\f',
      '\r',
      ';',
      '-- c\n',
      '/* c */',
      '/* ; COMMIT */',
      '-- COMMIT\n',
    ];
    try {
      for (let n = 0; n < 2000; n++) {
        let prefix = '';
        const count = Math.floor(random() * 6);
        for (let i = 0; i < count; i++) prefix += pieces[Math.floor(random() * pieces.length)];
        const target = random() < 0.5 ? 'COMMIT' : 'SELECT 1';
        const text = `${prefix}${target}`;
        // SQLite: COMMIT returns no rows, SELECT 1 does (preparing runs nothing). Text it
        // cannot prepare (a vertical tab is not space to it) cannot run either way.
        let sqliteSaysSelect: boolean;
        try {
          sqliteSaysSelect = db.prepare(text).reader;
        } catch {
          continue;
        }
        expect(statementFacts(text).verb, JSON.stringify(text)).toBe(
          sqliteSaysSelect ? 'SELECT' : 'COMMIT',
        );
      }
    } finally {
      db.close();
    }
  });
});

it('agrees with libsql for every one-character prefix of COMMIT (it skips more than spaces)', () => {
  const db = new Database(':memory:');
  const disagree: string[] = [];
  try {
    for (let cp = 0; cp <= 0xffff; cp++) {
      if ((cp >= 0xd800 && cp <= 0xdfff) || (cp > 0x3100 && cp < 0xfe00)) continue;
      for (const before of ['', '\t', ';', '/**/']) {
        const text = `${before}${String.fromCharCode(cp)}COMMIT`;
        let runsCommit = false;
        try {
          runsCommit = !db.prepare(text).reader;
        } catch {
          // libsql cannot prepare it: nothing runs.
        }
        if (runsCommit !== (statementFacts(text).verb === 'COMMIT'))
          disagree.push(JSON.stringify(text));
      }
    }
  } finally {
    db.close();
  }
  expect(disagree).toEqual([]);
});
