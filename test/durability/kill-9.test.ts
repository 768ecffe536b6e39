import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFresh, tempDir } from '../helpers.js';

const fixture = path.join(import.meta.dirname, '../fixtures/kill-writer.ts');
/** A sample for `npm test` (20 took 1-3 min of a run here); `npm run crash` runs 200. */
const KILLS = Number(process.env.WALGUARD_KILLS ?? 8);

/** Starts the writer child and collects the ids it acknowledges. */
function startWriter(file: string, run: number) {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', fixture, file, String(run)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const acked: number[] = [];
  let buffer = '';
  let onReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  let onFirstAck!: () => void;
  const firstAck = new Promise<void>((resolve) => {
    onFirstAck = resolve;
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      if (line === 'ready') onReady();
      else {
        acked.push(Number(line));
        if (acked.length === 1) onFirstAck();
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, acked, ready, firstAck, exited };
}

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
