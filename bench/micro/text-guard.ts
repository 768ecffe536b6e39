/**
 * What the text guard costs reads (src/queue/text-guard.ts): 10,000 rows read through
 * walguard's guarded statement cache against the same statement read raw by libsql (no
 * guard), for rows of short and of ~300-byte text, ASCII and not, in one run.
 *
 *   node --import tsx bench/micro/text-guard.ts
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'libsql';
import { Bench } from 'tinybench';
import { StatementCache } from '../../src/queue/statement-cache.js';
import { toObjects } from '../../src/row-codec.js';
import type { SqliteDatabase } from '../../src/sqlite-types.js';

const root = path.join(import.meta.dirname, '../results/tmp');
mkdirSync(root, { recursive: true });
const dir = mkdtempSync(path.join(root, 'text-guard-'));
const db = new Database(path.join(dir, 'bench.db'));
db.exec('PRAGMA journal_mode = WAL');
const shapes = {
  'short ASCII': (i: number) => ['name' + i, 'hello world abc '],
  'short non-ASCII': (i: number) => [`name${i}é`, 'héllo wörld 😀 '],
  '300-byte ASCII': (i: number) => ['name' + i, 'hello world abc '.repeat(20)],
  '300-byte non-ASCII': (i: number) => [`name${i}é`, 'héllo wörld 😀 '.repeat(18)],
};
const sql = (table: string) => `SELECT id, name, body, n FROM "${table}"`;
for (const [table, make] of Object.entries(shapes)) {
  db.exec(`CREATE TABLE "${table}" (id INTEGER PRIMARY KEY, name TEXT, body TEXT, n INTEGER)`);
  const insert = db.prepare(`INSERT INTO "${table}" (name, body, n) VALUES (?, ?, ?)`);
  db.exec('BEGIN');
  for (let i = 0; i < 10_000; i++) insert.run([...make(i), BigInt(i)]);
  db.exec('COMMIT');
}
const cache = new StatementCache(db as unknown as SqliteDatabase, { safeIntegers: false });
const bench = new Bench({ time: 1500, warmupTime: 300 });
for (const table of Object.keys(shapes)) {
  const raw = db.prepare(sql(table)).raw(true);
  const names = raw.columns().map((c) => c.name);
  bench.add(`${table}: unguarded`, () => toObjects(names, raw.all() as unknown[][]));
  bench.add(`${table}: guarded`, () => cache.rows(cache.get(sql(table), 'read'), []));
}
await bench.run();
console.log(
  `10,000 rows (id, name, body, n) per read, ${new Date().toISOString()}, Node ${process.version}`,
);
for (let t = 0; t < bench.tasks.length; t += 2) {
  const [plain, guarded] = [bench.tasks[t]!, bench.tasks[t + 1]!].map(
    (task) => (task.result as { latency: { mean: number } }).latency.mean,
  );
  console.log(
    `${bench.tasks[t]!.name.split(':')[0]}: unguarded ${plain!.toFixed(1)} ms, guarded ${guarded!.toFixed(1)} ms (${(guarded! / plain!).toFixed(2)}x)`,
  );
}
db.close();
rmSync(dir, { recursive: true, force: true });
