/**
 * Errors carry the caller's stack: the line of the app that made the failing call, not only
 * the queue and MessagePort frames where the rejection was settled. As with Kysely's own
 * drivers, the app's functions appear when they await the call (V8's async stack traces).
 */
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Walguard } from '../../src/index.js';
import { openTemp } from '../helpers.js';

interface DB {
  t: { id: number; v: number };
}

async function withTable() {
  const db = await openTemp<DB>();
  await db.write((k) =>
    k.schema
      .createTable('t')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('v', 'integer', (c) => c.check(sql`v >= 0`)),
  );
  await db.kysely.insertInto('t').values({ id: 1, v: 1 }).execute();
  return db;
}

async function stackOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(error).toBeInstanceOf(Error);
  return error!.stack ?? '';
}

async function appInsertsADuplicate(db: Walguard<DB>) {
  return await db.kysely.insertInto('t').values({ id: 1, v: 2 }).execute();
}
async function appUpdatesBadly(db: Walguard<DB>) {
  return await db.kysely.updateTable('t').set({ v: -1 }).where('id', '=', 1).execute();
}
async function appDeletesFromNowhere(db: Walguard<DB>) {
  return await sql`delete from nowhere`.execute(db.kysely);
}
async function appWritesADuplicate(db: Walguard<DB>) {
  return await db.write((k) => k.insertInto('t').values({ id: 1, v: 3 }));
}
async function appFailsInATransaction(db: Walguard<DB>) {
  return await db.transaction(async (trx) => {
    await trx.insertInto('t').values({ id: 2, v: 2 }).execute();
    await appFailsInsideTheTransaction(trx);
  });
}
async function appFailsInsideTheTransaction(
  trx: Parameters<Parameters<Walguard<DB>['transaction']>[0]>[0],
) {
  await trx.updateTable('t').set({ v: -5 }).execute();
}

describe('caller stacks', () => {
  it('a failed insert, update, delete and write() show the app function that made the call', async () => {
    const db = await withTable();
    for (const [name, call] of [
      ['appInsertsADuplicate', appInsertsADuplicate],
      ['appUpdatesBadly', appUpdatesBadly],
      ['appDeletesFromNowhere', appDeletesFromNowhere],
      ['appWritesADuplicate', appWritesADuplicate],
    ] as const) {
      const stack = await stackOf(call(db));
      expect(stack, name).toContain(name);
      expect(stack, name).toContain('caller-stack.test.ts');
    }
  });

  it('an error inside a transaction shows the statement’s caller and the transaction’s', async () => {
    const db = await withTable();
    const stack = await stackOf(appFailsInATransaction(db));
    expect(stack).toContain('appFailsInsideTheTransaction');
    expect(stack).toContain('caller-stack.test.ts');
  });
});
