import { type Generated, sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openDatabase, PostgresError, type WalguardError } from '../../src/index.js';
import { rejection } from '../helpers.js';
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
    // A batch certainly in flight when the server goes: a unit that sleeps inside it, with
    // a companion called in the same tick, so that it is not a lone unit (which does not ask
    // for its transaction id, and whose outcome would be `unknown`).
    const slow = db.write((k) => [
      k.insertInto('units').values({ id: -1, payload }),
      sql`select pg_sleep(5)`.compile(k),
    ]);
    const companion = db.write((k) => k.insertInto('units').values({ id: -2, payload }));
    slow.catch(() => {});
    companion.catch(() => {});
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
    await expect(companion).rejects.toMatchObject({ details: { outcome: 'rolled back' } });
    expect(present.has(-2)).toBe(false);
    // All or nothing: no unit has its insert without its update.
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    // A rejection says what the server did; one said rolled back is indeed absent.
    const rolledBack = rejected.filter((r) => r.error.details?.outcome === 'rolled back');
    expect(rolledBack.filter((r) => present.has(r.id))).toEqual([]);
    expect(
      rejected.filter((r) => r.error.details?.outcome === 'committed' && !present.has(r.id)),
    ).toEqual([]);
  }, 180_000);

  it('a backend killed mid-batch (no reply flushed): a batch says what the server did, a lone unit says unknown', async () => {
    const url = await createDatabase(cluster.url);
    const db = await openDatabase<DB>({ url, logger: false });
    await sql`create table units (id int primary key, payload text not null, n int not null default 0)`.execute(
      db.kysely,
    );
    /**
     * SIGKILLs the writer's server process once it runs pg_sleep: unlike a terminate or a
     * shutdown, nothing the server buffered reaches the app, and the server restarts.
     */
    const killWriter = async () => {
      for (;;) {
        const rows = await readFreshPg<{ pid: number }>(
          url,
          "select pid from pg_stat_activity where application_name = 'walguard writer' and query like '%pg_sleep%'",
        );
        if (rows[0] !== undefined) {
          process.kill(rows[0].pid, 'SIGKILL');
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const sleeper = (id: number) =>
      db.write((k) => [
        k.insertInto('units').values({ id, payload: 'x' }),
        sql`select pg_sleep(10)`.compile(k),
      ]);
    // Two units called in one tick: one batch, which had the server send its transaction id
    // before running the units (a Flush), so the writer can ask what became of it.
    const batched = Promise.allSettled([
      sleeper(1),
      db.write((k) => k.insertInto('units').values({ id: 2, payload: 'x' })),
    ]);
    await killWriter();
    for (const r of await batched) {
      expect(r.status).toBe('rejected');
      const error = (r as PromiseRejectedResult).reason as WalguardError;
      expect(error).toMatchObject({ code: 'IO_ERROR', details: { outcome: 'rolled back' } });
    }
    // A lone unit does not ask for its id (a plain autocommit round trip): its fate is not claimed.
    const lone = sleeper(3);
    lone.catch(() => {});
    await killWriter();
    const error = await rejection(lone);
    expect(error).toMatchObject({ code: 'IO_ERROR', details: { outcome: 'unknown' } });
    expect(error.message).toContain('could not be established');
    // A server's error as the cause is a PostgresError; here the socket just closed.
    expect(error.cause).not.toBeInstanceOf(PostgresError);
    // The next write reconnects; nothing of the lost ones is there.
    await db.write((k) => k.insertInto('units').values({ id: 4, payload: 'x' }));
    await db.close();
    expect(await readFreshPg<{ id: number }>(url, 'select id from units')).toEqual([{ id: 4 }]);
  }, 120_000);
});
