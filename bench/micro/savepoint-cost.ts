/**
 * What a SAVEPOINT costs per unit on the writer: the same 256 one-row inserts in one
 * transaction, each bare (the writer's fast path) or between `SAVEPOINT walguard_unit` and
 * `RELEASE walguard_unit` (what every unit pays when the schema or the SQL could FAIL). Raw
 * libsql with walguard's prepared-statement pattern; each iteration ends with ROLLBACK, so
 * no fsync is in the figures (the savepoint is CPU work).
 *
 *   node --import tsx bench/micro/savepoint-cost.ts
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'libsql';
import { Bench } from 'tinybench';

const UNITS = 256;
const root = path.join(import.meta.dirname, '../results/tmp');
mkdirSync(root, { recursive: true });
const dir = mkdtempSync(path.join(root, 'savepoint-'));
const db = new Database(path.join(dir, 'bench.db'));
db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL');
db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
const begin = db.prepare('BEGIN IMMEDIATE');
const rollback = db.prepare('ROLLBACK');
const savepoint = db.prepare('SAVEPOINT walguard_unit');
const release = db.prepare('RELEASE walguard_unit');
const value = ['x'.repeat(100)];

const bench = new Bench({ time: 2000, warmupTime: 300 });
bench
  .add('bare (fast path)', () => {
    begin.run();
    for (let u = 0; u < UNITS; u++) insert.run(value);
    rollback.run();
  })
  .add('SAVEPOINT + RELEASE per unit', () => {
    begin.run();
    for (let u = 0; u < UNITS; u++) {
      savepoint.run();
      insert.run(value);
      release.run();
    }
    rollback.run();
  });
await bench.run();
const [bare, wrapped] = bench.tasks.map((t) => {
  const r = t.result as { latency: { mean: number; rme: number } };
  return { mean: r.latency.mean, rme: r.latency.rme };
});
const perUnitUs = (ms: number) => (ms * 1000) / UNITS;
console.log(
  `${UNITS} one-row inserts per iteration, ${new Date().toISOString()}, Node ${process.version}`,
);
console.log(`bare:      ${perUnitUs(bare!.mean).toFixed(2)} µs/unit (±${bare!.rme.toFixed(1)}%)`);
console.log(
  `savepoint: ${perUnitUs(wrapped!.mean).toFixed(2)} µs/unit (±${wrapped!.rme.toFixed(1)}%)`,
);
console.log(
  `a savepoint costs ${(perUnitUs(wrapped!.mean) - perUnitUs(bare!.mean)).toFixed(2)} µs per unit: ${(wrapped!.mean / bare!.mean).toFixed(2)}x the bare unit`,
);
db.close();
rmSync(dir, { recursive: true, force: true });
