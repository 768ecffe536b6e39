import { expect, it } from 'vitest';
import { startWriter } from '../fixtures/start-writer.js';
import { readFreshPg } from './cluster.js';
import { describePg, freshUrl } from './pg-helpers.js';

const KILLS = Number(process.env.WALGUARD_PG_KILLS ?? 3);

/** Acknowledged ids missing from the database, and units present only in part. */
async function check(url: string, acked: readonly number[]) {
  const present = new Set(
    (await readFreshPg<{ id: number }>(url, 'select id from units')).map((r) => r.id),
  );
  const partial = await readFreshPg(
    url,
    `select u.id, count(p.part) as n from units u left join parts p on p.unit_id = u.id
     group by u.id having count(p.part) != 3
     union all
     select p.unit_id, count(*) from parts p left join units u on u.id = p.unit_id
     where u.id is null group by p.unit_id`,
  );
  return { lost: acked.filter((id) => !present.has(id)), partial, present: present.size };
}

describePg('PostgreSQL: kill -9 of the app', () => {
  it(`loses no acknowledged unit and leaves no partial unit across ${KILLS} kills`, async () => {
    const url = await freshUrl();
    const allAcked: number[] = [];
    for (let run = 1; run <= KILLS; run++) {
      const writer = startWriter(url, run);
      await writer.ready;
      await writer.firstAck;
      await new Promise((r) => setTimeout(r, 30 + Math.random() * 300));
      writer.child.kill('SIGKILL');
      await writer.exited;
      expect(writer.acked.length).toBeGreaterThan(0);
      allAcked.push(...writer.acked);
      // Read back through a fresh connection: the killed app's are gone.
      const { lost, partial } = await check(url, allAcked);
      expect(lost).toEqual([]);
      expect(partial).toEqual([]);
    }
  }, 240_000);

  it('two processes write to one database at once; every unit of both is kept', async () => {
    const url = await freshUrl();
    const a = startWriter(url, 1);
    await a.ready;
    const b = startWriter(url, 2);
    await b.ready;
    // Both write concurrently until each has 300 acknowledged units.
    while (a.acked.length < 300 || b.acked.length < 300) {
      await new Promise((r) => setTimeout(r, 50));
    }
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
    await Promise.all([a.exited, b.exited]);
    const { lost, partial, present } = await check(url, [...a.acked, ...b.acked]);
    expect(lost).toEqual([]);
    expect(partial).toEqual([]);
    const ids = await readFreshPg<{ run: number }>(
      url,
      'select distinct id / 1000000 as run from units order by run',
    );
    expect(ids).toEqual([{ run: 1 }, { run: 2 }]);
    expect(present).toBeGreaterThanOrEqual(600);
  }, 240_000);
});
