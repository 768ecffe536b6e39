/**
 * How should the PostgreSQL writer isolate the units of a batch? Measures, on a throwaway
 * local cluster, one connection sending batches of N one-row inserts as one pipeline
 * (src/pg/pipeline.ts), in three ways:
 *
 * - `plain`: BEGIN; N inserts; COMMIT — unnamed statements (parsed every time);
 * - `prepared`: the same with a prepared statement (parsed once per connection);
 * - `savepoint`: prepared, and each insert inside SAVEPOINT/RELEASE (a subtransaction per
 *   unit: past 64 in one transaction, PostgreSQL's per-backend subtransaction cache overflows).
 *
 * While the writer runs, 4 readers run index range scans over the recent rows (their
 * snapshots must check the writer's in-progress transaction, which with an overflowed cache
 * means pg_subtrans lookups). Prints rows/s and reads/s per mode and batch size.
 *
 *   node --import tsx bench/pg-isolation.ts [--seconds 2]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pgTypes } from '../src/pg/pg-types.js';
import { Pipeline, type PipelineStatement, toWireParams } from '../src/pg/pipeline.js';
import { createDatabase, startCluster } from '../test/pg/cluster.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' } } });
const SECONDS = Number(values.seconds);
const MODES = ['plain', 'prepared', 'savepoint'] as const;
const SIZES = [16, 64, 256];
const payload = toWireParams(['x'.repeat(200)]);

const cluster = await startCluster();
try {
  const url = await createDatabase(cluster.url);
  const admin = new pg.Client(url);
  await admin.connect();
  await admin.query('create table t (id bigserial primary key, v text not null)');
  const writer = new pg.Client({ connectionString: url, types: pgTypes });
  await writer.connect();
  const send = async (items: PipelineStatement[]) => {
    const p = new Pipeline(items, pgTypes);
    writer.query(p);
    const outcome = await p.done;
    if (outcome.failure) throw outcome.failure.error;
  };
  await send([{ sql: 'insert into t (v) values ($1)', params: payload, name: 'ins' }]);
  const control = (sql: string): PipelineStatement => ({ sql, params: [] });
  const rows: string[] = [];
  for (const mode of MODES) {
    for (const n of SIZES) {
      await admin.query('truncate t');
      const items: PipelineStatement[] = [control('BEGIN')];
      for (let i = 0; i < n; i++) {
        if (mode === 'savepoint') items.push(control('SAVEPOINT u'));
        items.push(
          mode === 'plain'
            ? { sql: 'insert into t (v) values ($1)', params: payload }
            : { sql: 'insert into t (v) values ($1)', params: payload, name: 'ins', parse: false },
        );
        if (mode === 'savepoint') items.push(control('RELEASE u'));
      }
      items.push(control('COMMIT'));
      const readers = new pg.Pool({ connectionString: url, max: 4 });
      let reads = 0;
      let stop = false;
      const read = async () => {
        while (!stop) {
          await readers.query('select count(*) from t where id > (select max(id) - 500 from t)');
          reads++;
        }
      };
      const loops = [read(), read(), read(), read()];
      let written = 0;
      const started = performance.now();
      while (performance.now() - started < SECONDS * 1000) {
        await send(items);
        written += n;
      }
      const elapsed = (performance.now() - started) / 1000;
      stop = true;
      await Promise.all(loops);
      await readers.end();
      const line = `| ${mode} | ${n} | ${Math.round(written / elapsed)} | ${Math.round(reads / elapsed)} |`;
      rows.push(line);
      console.error(line);
    }
  }
  await writer.end();
  await admin.end();
  console.log(
    [
      `PostgreSQL unit isolation, ${new Date().toISOString().slice(0, 10)}, ${SECONDS} s per cell, 4 concurrent readers`,
      '',
      '| mode | units per batch | rows/s | reads/s |',
      '| --- | --- | --- | --- |',
      ...rows,
    ].join('\n'),
  );
} finally {
  cluster.stop();
}
