import { type Generated, sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase, type WalguardError } from '../../src/index.js';
import { type Cluster, createDatabase, readFreshPg, startCluster } from './cluster.js';
import { describePg } from './pg-helpers.js';

interface DB {
  units: { id: number; payload: string; n: Generated<number> };
}

describePg('PostgreSQL: server restart mid-load', () => {
  // A cluster of its own: restarting the shared one would disturb the other test files.
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });
  afterAll(() => cluster?.stop());

  it('pg_ctl restart -m immediate: every acknowledged unit is kept, in-flight units are rejected with IO_ERROR, the app reconnects', async () => {
    const url = await createDatabase(cluster.url);
    const db = await openDatabase<DB>({ url, logger: false });
    await sql`create table units (id int primary key, payload text not null, n int not null default 0)`.execute(
      db.kysely,
    );
    const acked: number[] = [];
    const rejected: { id: number; error: WalguardError }[] = [];
    let next = 0;
    let ackedAfterRestart = 0;
    let restarted = false;
    let stop = false;
    const payload = 'x'.repeat(200);
    const caller = async () => {
      while (!stop) {
        const id = next++;
        try {
          // Two statements: all or nothing across the crash too.
          await db.write((k) => [
            k.insertInto('units').values({ id, payload }),
            k.updateTable('units').set({ n: 1 }).where('id', '=', id),
          ]);
          acked.push(id);
          if (restarted) ackedAfterRestart++;
        } catch (error) {
          rejected.push({ id, error: error as WalguardError });
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    };
    const callers = Array.from({ length: 16 }, caller);
    while (acked.length < 300) await new Promise((r) => setTimeout(r, 10));
    // A batch certainly in flight when the server goes: a unit that sleeps inside it.
    const slow = db.write((k) => [
      k.insertInto('units').values({ id: -1, payload }),
      sql`select pg_sleep(5)`.compile(k),
    ]);
    slow.catch(() => {});
    await new Promise((r) => setTimeout(r, 300));
    await cluster.pgCtlAsync('-m', 'immediate', '-w', 'restart');
    restarted = true;
    const deadline = Date.now() + 60_000;
    while (ackedAfterRestart < 300 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    stop = true;
    await Promise.all(callers);
    await db.close();

    const slowError = await slow.then(
      () => undefined,
      (e: WalguardError) => e,
    );
    expect(slowError).toMatchObject({ code: 'IO_ERROR', details: { outcome: 'rolled back' } });
    expect(ackedAfterRestart).toBeGreaterThanOrEqual(300);
    expect(rejected.length).toBeGreaterThan(0);
    for (const { error } of rejected) expect(error.code).toBe('IO_ERROR');
    const rows = await readFreshPg<{ id: number; n: number }>(url, 'select id, n from units');
    const present = new Map(rows.map((r) => [r.id, r.n]));
    expect(acked.filter((id) => !present.has(id))).toEqual([]);
    expect(present.has(-1)).toBe(false);
    // All or nothing: no unit has its insert without its update.
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    // A rejection says what the server did; one said rolled back is indeed absent.
    const rolledBack = rejected.filter((r) => r.error.details?.outcome === 'rolled back');
    expect(rolledBack.filter((r) => present.has(r.id))).toEqual([]);
    expect(
      rejected.filter((r) => r.error.details?.outcome === 'committed' && !present.has(r.id)),
    ).toEqual([]);
  }, 180_000);
});
