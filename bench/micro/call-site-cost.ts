/**
 * What giving errors the caller's stack costs (`captureCallSite` in src/errors.ts, called
 * when a unit fails). Measured in one run:
 * 1. tinybench: one `captureCallSite()` 20 frames deep, against compiling a Kysely insert
 *    (work every unit does on the main thread anyway);
 * 2. end to end: 256 callers awaiting db.kysely inserts through walguard (synchronous=NORMAL,
 *    so the main thread's work shows), inserts that succeed and inserts that all fail (a
 *    duplicate key), each with capture on and with `Error.captureStackTrace` replaced by a
 *    no-op (off), alternating, 3 rounds each.
 *
 *   node --import tsx bench/micro/call-site-cost.ts
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Bench } from 'tinybench';
import { captureCallSite } from '../../src/errors.js';
import { openDatabase } from '../../src/index.js';

interface DB {
  t: { id: number; v: string };
}
const root = path.join(import.meta.dirname, '../results/tmp');
mkdirSync(root, { recursive: true });
const dir = mkdtempSync(path.join(root, 'call-site-'));
const db = await openDatabase<DB>({
  path: path.join(dir, 'b.db'),
  logger: false,
  synchronous: 'NORMAL',
});
await db.kysely.schema
  .createTable('t')
  .addColumn('id', 'integer', (c) => c.primaryKey())
  .addColumn('v', 'text')
  .execute();

const deep = (n: number, f: () => unknown): unknown => (n === 0 ? f() : deep(n - 1, f));
const bench = new Bench({ time: 1500, warmupTime: 200 });
bench
  .add('captureCallSite() at depth 20', () => deep(20, captureCallSite))
  .add('compile a Kysely insert at depth 20', () =>
    deep(20, () => db.kysely.insertInto('t').values({ id: 1, v: 'x' }).compile()),
  );
await bench.run();
const [capture, compile] = bench.tasks.map(
  (t) => (t.result as { latency: { mean: number } }).latency.mean * 1000,
);
console.log(`${new Date().toISOString()}, Node ${process.version}`);
console.log(
  `captureCallSite: ${capture!.toFixed(2)} µs; compiling one insert: ${compile!.toFixed(2)} µs (${(capture! / compile!).toFixed(2)}x)`,
);

const realCapture = Error.captureStackTrace;
let next = 10;
await db.kysely.insertInto('t').values({ id: 1, v: 'taken' }).execute();
/** Units per second for `units` inserts by 256 callers; `fail`: every insert hits id 1. */
async function round(units: number, fail: boolean): Promise<number> {
  const started = performance.now();
  let left = units;
  await Promise.all(
    Array.from({ length: 256 }, async () => {
      while (left-- > 0) {
        const id = fail ? 1 : next++;
        await db.kysely
          .insertInto('t')
          .values({ id, v: 'x'.repeat(100) })
          .execute()
          .catch(() => {});
      }
    }),
  );
  return units / ((performance.now() - started) / 1000);
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
for (const fail of [false, true]) {
  const on: number[] = [];
  const off: number[] = [];
  await round(5000, fail);
  for (let r = 0; r < 3; r++) {
    on.push(await round(10_000, fail));
    Error.captureStackTrace = () => {};
    off.push(await round(10_000, fail));
    Error.captureStackTrace = realCapture;
  }
  console.log(
    `256 callers, db.kysely inserts that ${fail ? 'all fail' : 'succeed'}: capture on ${median(on).toFixed(0)} units/s, off ${median(off).toFixed(0)} units/s (on/off ${(median(on) / median(off)).toFixed(3)}; rounds on ${on.map((x) => x.toFixed(0)).join(', ')}, off ${off.map((x) => x.toFixed(0)).join(', ')})`,
  );
}
await db.close();
rmSync(dir, { recursive: true, force: true });
