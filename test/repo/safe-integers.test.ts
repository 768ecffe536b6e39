/**
 * Integers beyond 2^53: with `safeIntegers: true` every INTEGER comes back as a `bigint`,
 * exactly, on the reader, the writer (`RETURNING`) and in transactions. `insertId` is exact
 * whatever the option.
 */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openTemp, readFresh } from '../helpers.js';

interface DB {
  t: { id: bigint | number; n: bigint | number };
}

const MAX = 9223372036854775807n; // 2^63 - 1
const MIN = -9223372036854775808n; // -2^63

async function withTable(safeIntegers?: boolean) {
  const db = await openTemp<DB>(safeIntegers === undefined ? {} : { safeIntegers });
  await db.write((k) =>
    k.schema
      .createTable('t')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('n', 'integer'),
  );
  return db;
}

describe('safeIntegers', () => {
  it('round-trips 2^63-1 and -2^63 exactly as bigint: reads, RETURNING, transactions, insertId', async () => {
    const db = await withTable(true);
    const inserted = await db.kysely.insertInto('t').values({ id: MAX, n: MIN }).executeTakeFirst();
    expect(inserted.insertId).toBe(MAX);
    const written = await db.write((k) =>
      k.insertInto('t').values({ id: 7, n: MAX }).returning(['id', 'n']),
    );
    expect(written).toEqual({ rows: [{ id: 7n, n: MAX }] });
    const rows = await db.kysely.selectFrom('t').selectAll().orderBy('id').execute();
    expect(rows).toEqual([
      { id: 7n, n: MAX },
      { id: MAX, n: MIN },
    ]);
    const raw = await sql<{ x: bigint }>`select ${MAX} - 1 as x`.execute(db.kysely);
    expect(raw.rows).toEqual([{ x: MAX - 1n }]);
    const inTx = await db.transaction(async (trx) => {
      await trx
        .updateTable('t')
        .set({ n: MAX - 2n })
        .where('id', '=', 7)
        .execute();
      return trx.selectFrom('t').select('n').where('id', '=', 7).executeTakeFirstOrThrow();
    });
    expect(inTx).toEqual({ n: MAX - 2n });
    const streamed: unknown[] = [];
    for await (const row of db.kysely.selectFrom('t').select('id').orderBy('id').stream()) {
      streamed.push(row);
    }
    expect(streamed).toEqual([{ id: 7n }, { id: MAX }]);
    expect(readFresh(db.path, 'select cast(n as text) as n from t where id = 7')).toEqual([
      { n: String(MAX - 2n) },
    ]);
  });

  it('off (the default): integers are numbers, and insertId is still exact', async () => {
    const db = await withTable();
    const inserted = await db.kysely.insertInto('t').values({ id: MAX, n: 1 }).executeTakeFirst();
    expect(inserted.insertId).toBe(MAX);
    const [row] = await db.kysely.selectFrom('t').select('n').execute();
    expect(row).toEqual({ n: 1 });
  });

  it('is validated like every option', async () => {
    await expect(openTemp({ safeIntegers: 'yes' as unknown as boolean })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('safeIntegers'),
    });
  });
});
