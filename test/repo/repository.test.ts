import { type Generated, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { SqliteError, WalguardError } from '../../src/index.js';
import { Repository } from '../../src/repo/repository.js';
import { delay, openTemp, readFresh } from '../helpers.js';

interface DB {
  items: {
    id: Generated<number>;
    name: string;
    qty: Generated<number>;
    note: string | null;
    data: Uint8Array | null;
  };
  pets: { name: string; species: string; age: number | null };
}

async function setup(options: Parameters<typeof openTemp>[0] = {}) {
  const db = await openTemp<DB>(options);
  await db.transaction(async (trx) => {
    await sql`create table items (
      id integer primary key,
      name text not null unique,
      qty integer not null default 0 check (qty >= 0),
      note text,
      data blob)`.execute(trx);
    await sql`create table pets (name text primary key, species text not null, age integer)`.execute(
      trx,
    );
  });
  const items = new Repository(db, 'items');
  const pets = new Repository(db, 'pets', { primaryKey: 'name' });
  return { db, items, pets };
}

const names = (rows: { name: string }[]) => rows.map((r) => r.name);

describe('Repository writes', () => {
  it('insert resolves with the stored row, defaults applied, once durable', async () => {
    const { db, items } = await setup();
    const row = await items.insert({ name: 'a', note: null });
    expect(row).toEqual({ id: 1, name: 'a', qty: 0, note: null, data: null });
    expect(readFresh(db.path, 'select id, name, qty from items')).toEqual([
      { id: 1, name: 'a', qty: 0 },
    ]);
  });

  it('insert stores blobs and reads them back as bytes', async () => {
    const { items } = await setup();
    const row = await items.insert({ name: 'b', note: 'x', data: new Uint8Array([1, 2, 250]) });
    expect([...(row.data ?? [])]).toEqual([1, 2, 250]);
    const found = await items.findById(row.id);
    expect([...(found?.data ?? [])]).toEqual([1, 2, 250]);
  });

  it('a deferred insert resolves at once with undefined and is applied within deferredFlushMs', async () => {
    const { db, items } = await setup({ deferredFlushMs: 20 });
    const result = await items.insert({ name: 'later', note: null }, { durability: 'deferred' });
    expect(result).toBeUndefined();
    await delay(200);
    expect(readFresh(db.path, 'select name from items')).toEqual([{ name: 'later' }]);
  });

  it('insertMany is one unit: all rows, or none when one fails', async () => {
    const { db, items } = await setup();
    const before = db.stats().units;
    const rows = await items.insertMany([
      { name: 'a', note: null },
      { name: 'b', note: null, qty: 2 },
      { name: 'c', note: 'c' },
    ]);
    expect(rows.map((r) => [r.id, r.name, r.qty])).toEqual([
      [1, 'a', 0],
      [2, 'b', 2],
      [3, 'c', 0],
    ]);
    expect(db.stats().units - before).toBe(1);
    const failed = items.insertMany([
      { name: 'd', note: null },
      { name: 'a', note: null },
      { name: 'e', note: null },
    ]);
    await expect(failed).rejects.toBeInstanceOf(SqliteError);
    await expect(failed).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_UNIQUE' });
    expect(readFresh(db.path, 'select name from items order by id')).toEqual([
      { name: 'a' },
      { name: 'b' },
      { name: 'c' },
    ]);
    expect(await items.insertMany([])).toEqual([]);
  });

  it('update resolves with the new row, or undefined when there is none', async () => {
    const { db, items } = await setup();
    const a = await items.insert({ name: 'a', note: null });
    expect(await items.update(a.id, { qty: 5, note: 'five' })).toEqual({
      ...a,
      qty: 5,
      note: 'five',
    });
    expect(await items.update(999, { qty: 1 })).toBeUndefined();
    await expect(items.update(a.id, {})).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('at least one column'),
    });
    await expect(items.update(a.id, { qty: -1 })).rejects.toMatchObject({
      code: 'SQLITE_CONSTRAINT_CHECK',
    });
    expect(readFresh(db.path, 'select qty, note from items')).toEqual([{ qty: 5, note: 'five' }]);
  });

  it('updateWhere and deleteWhere count the rows they change and refuse an empty filter', async () => {
    const { db, items } = await setup();
    await items.insertMany(
      Array.from({ length: 6 }, (_, i) => ({ name: `n${i}`, qty: i, note: null })),
    );
    expect(await items.updateWhere({ qty: { gte: 3 } }, { note: 'big' })).toBe(3);
    await expect(items.updateWhere({}, { note: 'all' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await expect(items.deleteWhere({})).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(await items.deleteWhere({ note: 'big' })).toBe(3);
    expect(readFresh(db.path, 'select name from items order by id')).toEqual([
      { name: 'n0' },
      { name: 'n1' },
      { name: 'n2' },
    ]);
  });

  it('upsert inserts, then overwrites the given columns on conflict', async () => {
    const { db, pets, items } = await setup();
    expect(await pets.upsert({ name: 'rex', species: 'dog', age: 3 })).toEqual({
      name: 'rex',
      species: 'dog',
      age: 3,
    });
    expect(await pets.upsert({ name: 'rex', species: 'wolf', age: 4 })).toEqual({
      name: 'rex',
      species: 'wolf',
      age: 4,
    });
    // Only `age` is overwritten.
    expect(await pets.upsert({ name: 'rex', species: 'cat', age: 5 }, { update: ['age'] })).toEqual(
      { name: 'rex', species: 'wolf', age: 5 },
    );
    // Conflict on a unique column other than the primary key.
    const a = await items.insert({ name: 'a', qty: 1, note: null });
    const b = await items.upsert({ name: 'a', qty: 7, note: 'u' }, { conflict: ['name'] });
    expect(b).toEqual({ ...a, qty: 7, note: 'u' });
    // Nothing but the key given: the existing row comes back unchanged.
    expect(await pets.upsert({ name: 'rex', species: 'x' }, { update: [] })).toMatchObject({
      species: 'wolf',
    });
    expect(readFresh(db.path, 'select name, species, age from pets')).toEqual([
      { name: 'rex', species: 'wolf', age: 5 },
    ]);
  });

  it('delete resolves true when a row was deleted, false when there was none', async () => {
    const { db, pets } = await setup();
    await pets.insert({ name: 'tom', species: 'cat', age: null });
    expect(await pets.delete('tom')).toBe(true);
    expect(await pets.delete('tom')).toBe(false);
    expect(readFresh(db.path, 'select count(*) as n from pets')).toEqual([{ n: 0 }]);
  });

  it('deferred update and delete resolve at once and are flushed by close()', async () => {
    const { db, pets } = await setup({ deferredFlushMs: 60_000 });
    await pets.insertMany([
      { name: 'a', species: 'cat', age: 1 },
      { name: 'b', species: 'dog', age: 2 },
    ]);
    expect(await pets.update('a', { age: 10 }, { durability: 'deferred' })).toBeUndefined();
    expect(await pets.delete('b', { durability: 'deferred' })).toBeUndefined();
    expect(db.stats().deferredPending).toBe(2);
    await db.close();
    expect(readFresh(db.path, 'select name, age from pets')).toEqual([{ name: 'a', age: 10 }]);
  });
});

describe('Repository reads', () => {
  async function withPets() {
    const ctx = await setup();
    await ctx.pets.insertMany([
      { name: 'ada', species: 'cat', age: 3 },
      { name: 'bo', species: 'dog', age: null },
      { name: 'cy', species: 'cat', age: 7 },
      { name: 'di', species: 'bird', age: 1 },
      { name: 'ed', species: 'dog', age: 7 },
    ]);
    return ctx;
  }

  it('findById returns the row or undefined', async () => {
    const { pets } = await withPets();
    expect(await pets.findById('cy')).toEqual({ name: 'cy', species: 'cat', age: 7 });
    expect(await pets.findById('zz')).toBeUndefined();
  });

  it('find applies typed filters: values, null, and each condition', async () => {
    const { pets } = await withPets();
    const find = async (where: Parameters<typeof pets.find>[0]) =>
      names((await pets.find(where)).rows);
    expect(await find({ where: { species: 'cat' } })).toEqual(['ada', 'cy']);
    expect(await find({ where: { age: null } })).toEqual(['bo']);
    expect(await find({ where: { age: { isNull: false } } })).toEqual(['ada', 'cy', 'di', 'ed']);
    // `ne` is null-safe: bo (age NULL) is not 7.
    expect(await find({ where: { age: { ne: 7 } } })).toEqual(['ada', 'bo', 'di']);
    expect(await find({ where: { age: { gt: 1, lte: 7 } } })).toEqual(['ada', 'cy', 'ed']);
    expect(await find({ where: { age: { gte: 7 } } })).toEqual(['cy', 'ed']);
    expect(await find({ where: { age: { lt: 3 } } })).toEqual(['di']);
    expect(await find({ where: { species: { in: ['dog', 'bird'] } } })).toEqual(['bo', 'di', 'ed']);
    expect(await find({ where: { species: { in: [] } } })).toEqual([]);
    expect(await find({ where: { species: { notIn: ['cat'] } } })).toEqual(['bo', 'di', 'ed']);
    expect(await find({ where: { name: { like: '%d%' } } })).toEqual(['ada', 'di', 'ed']);
    expect(await find({ where: { species: 'cat', age: { gt: 5 } } })).toEqual(['cy']);
    expect(await find({ where: { age: { eq: null } } })).toEqual(['bo']);
    await expect(pets.find({ where: { age: { between: [1, 2] } as never } })).rejects.toMatchObject(
      { code: 'INVALID_OPTION', message: expect.stringContaining('between') },
    );
  });

  it('find orders by the given columns with the primary key as tie-breaker', async () => {
    const { pets } = await withPets();
    const byAge = await pets.find({ orderBy: [{ column: 'age', direction: 'desc' }] });
    // NULL sorts last descending; cy and ed tie on 7 and keep primary-key order.
    expect(names(byAge.rows)).toEqual(['cy', 'ed', 'ada', 'di', 'bo']);
    expect(names((await pets.find({ orderBy: 'species' })).rows)).toEqual([
      'di',
      'ada',
      'cy',
      'bo',
      'ed',
    ]);
  });

  it('count counts all rows or those matching a filter', async () => {
    const { pets } = await withPets();
    expect(await pets.count()).toBe(5);
    expect(await pets.count({ species: 'dog' })).toBe(2);
    expect(await pets.count({ age: { gt: 100 } })).toBe(0);
  });
});

describe('Repository keyset pagination', () => {
  /** Walks every page and returns them. */
  async function pages<R>(
    fetch: (after: string | undefined) => Promise<{ rows: R[]; next: string | undefined }>,
  ): Promise<R[][]> {
    const out: R[][] = [];
    let after: string | undefined;
    do {
      const page = await fetch(after);
      out.push(page.rows);
      after = page.next;
    } while (after !== undefined && out.length < 100);
    return out;
  }

  it('pages cover every row once; the last page has no next cursor, at every boundary', async () => {
    const { items } = await setup();
    for (const total of [0, 1, 9, 10, 11, 20, 25]) {
      await items.deleteWhere({ id: { gte: 0 } });
      if (total > 0) {
        await items.insertMany(
          Array.from({ length: total }, (_, i) => ({ name: `n${i}`, qty: i % 4, note: null })),
        );
      }
      const all = await pages((after) => items.find({ limit: 10, after }));
      expect(all.flat().map((r) => r.name)).toEqual(
        Array.from({ length: total }, (_, i) => `n${i}`),
      );
      expect(all.length).toBe(Math.max(1, Math.ceil(total / 10)));
      expect(all.slice(0, -1).every((p) => p.length === 10)).toBe(true);
    }
  });

  it('handles ties and NULLs in the order columns, ascending and descending', async () => {
    const { db, pets } = await setup();
    const species = ['cat', 'dog', 'bird'];
    await pets.insertMany(
      Array.from({ length: 40 }, (_, i) => ({
        name: `p${String(i).padStart(2, '0')}`,
        species: species[i % 3]!,
        age: i % 5 === 0 ? null : i % 4,
      })),
    );
    for (const direction of ['asc', 'desc'] as const) {
      for (const limit of [1, 3, 7, 40, 41]) {
        const orderBy = [
          { column: 'age', direction },
          { column: 'species', direction: 'desc' },
        ] as const;
        const walked = (await pages((after) => pets.find({ orderBy, limit, after }))).flat();
        const { rows } = await sql<{
          name: string;
        }>`select name from pets order by age ${sql.raw(direction)}, species desc, name asc`.execute(
          db.kysely,
        );
        expect(walked.map((r) => r.name)).toEqual(rows.map((r) => r.name));
      }
    }
  });

  it('pages with a filter, and rows inserted before the cursor do not shift later pages', async () => {
    const { items } = await setup();
    await items.insertMany(
      Array.from({ length: 30 }, (_, i) => ({ name: `n${i}`, qty: i % 3, note: null })),
    );
    const first = await items.find({ where: { qty: 0 }, limit: 4 });
    expect(first.rows.map((r) => r.name)).toEqual(['n0', 'n3', 'n6', 'n9']);
    // A row that sorts before the cursor, inserted between two page reads.
    await items.insert({ id: 0, name: 'early', qty: 0, note: null } as never);
    const second = await items.find({ where: { qty: 0 }, limit: 4, after: first.next });
    expect(second.rows.map((r) => r.name)).toEqual(['n12', 'n15', 'n18', 'n21']);
  });

  it('refuses a bad limit, a foreign cursor and a cursor from another order', async () => {
    const { items } = await setup();
    await items.insertMany(Array.from({ length: 5 }, (_, i) => ({ name: `n${i}`, note: null })));
    const page = await items.find({ limit: 2 });
    expect(page.next).toBeTypeOf('string');
    for (const limit of [0, -1, 1.5, Number.NaN]) {
      await expect(items.find({ limit })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    }
    await expect(items.find({ limit: 2, after: 'garbage' })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await expect(
      items.find({ limit: 2, after: page.next, orderBy: { column: 'name', direction: 'desc' } }),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('same `orderBy`'),
    });
  });
});

describe('Repository bad input', () => {
  it('an oversize value fails with INVALID_OPTION before any SQL and changes nothing', async () => {
    const { db } = await setup();
    const repo = new Repository(db, 'items', { maxValueBytes: 1024 });
    const units = db.stats().units;
    const big = 'é'.repeat(600); // 1200 bytes in UTF-8, 600 UTF-16 units
    await expect(repo.insert({ name: big, note: null })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('`items.name` to be at most 1024 bytes'),
    });
    await expect(
      repo.insertMany([
        { name: 'ok', note: null },
        { name: 'x', note: null, data: new Uint8Array(2000) },
      ]),
    ).rejects.toBeInstanceOf(WalguardError);
    expect(db.stats().units).toBe(units);
    expect(readFresh(db.path, 'select count(*) as n from items')).toEqual([{ n: 0 }]);
    await repo.insert({ name: 'é'.repeat(500), note: null });
    expect(readFresh(db.path, 'select count(*) as n from items')).toEqual([{ n: 1 }]);
  });

  it('a deferred write with bad input is reported through the error event, never unhandled', async () => {
    const { db, items } = await setup({ deferredFlushMs: 5 });
    const errors: Error[] = [];
    db.on('error', (e) => errors.push(e));
    const repo = new Repository(db, 'items', { maxValueBytes: 16 });
    void repo.insert({ name: 'x'.repeat(100), note: null }, { durability: 'deferred' });
    await expect(
      repo.insert({ name: 'y'.repeat(100), note: null }, { durability: 'deferred' }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await items.insert({ name: 'flush', note: null });
    expect(errors.map((e) => (e as WalguardError).code)).toEqual([
      'INVALID_OPTION',
      'INVALID_OPTION',
    ]);
    expect(readFresh(db.path, 'select name from items')).toEqual([{ name: 'flush' }]);
  });

  it('a value SQLite cannot store, or an unknown durability, is refused', async () => {
    const { db, items } = await setup();
    await expect(
      items.insert({ name: new Date() as unknown as string, note: null }),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('items.name'),
    });
    await expect(
      items.insert({ name: 'a', note: null }, { durability: 'eventually' } as never),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(() => new Repository(db, 'items', { maxValueBytes: 0 })).toThrow(
      'Expected `maxValueBytes` to be an integer >= 1',
    );
    expect(await items.count()).toBe(0);
  });
});
