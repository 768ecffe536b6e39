import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startWriter } from '../fixtures/start-writer.js';
import { readFresh, tempDir } from '../helpers.js';

/** A sample for `npm test` (8 took 1 min of a loaded run here); `npm run crash` runs 200. */
const KILLS = Number(process.env.WALGUARD_KILLS ?? 5);

describe('kill -9', () => {
  it(`loses no acknowledged unit and leaves no partial unit across ${KILLS} kills at random moments`, async () => {
    const file = path.join(tempDir(), 'killed.db');
    const allAcked: number[] = [];
    for (let run = 1; run <= KILLS; run++) {
      const writer = startWriter(file, run);
      await writer.ready;
      // Kill at a random moment of a running workload (the machine may be slow to start it).
      await writer.firstAck;
      await new Promise((r) => setTimeout(r, 30 + Math.random() * 300));
      writer.child.kill('SIGKILL');
      await writer.exited;
      allAcked.push(...writer.acked);
      expect(writer.acked.length).toBeGreaterThan(0);

      expect(readFresh(file, 'pragma integrity_check')).toEqual([{ integrity_check: 'ok' }]);
      const present = new Set(
        readFresh<{ id: number }>(file, 'select id from units').map((r) => r.id),
      );
      const lost = allAcked.filter((id) => !present.has(id));
      expect(lost).toEqual([]);
      const partial = readFresh(
        file,
        `select u.id, count(p.part) as n from units u left join parts p on p.unit_id = u.id
         group by u.id having n != 3
         union all
         select p.unit_id, count(*) from parts p left join units u on u.id = p.unit_id
         where u.id is null group by p.unit_id`,
      );
      expect(partial).toEqual([]);
    }
    expect(allAcked.length).toBeGreaterThan(KILLS * 10);
  }, 240_000);
});
