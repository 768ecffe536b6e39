/** The read suite's section of a run's report (see `suite.ts`). */
import { ms, rate, ratio, table } from '../report.js';
import {
  HEAVY_ROWS,
  HEAVY_WRITERS,
  POINT_ROWS,
  RECALL_DIMENSIONS,
  RECALL_WRITERS,
  type ReadAggregate,
  type ReadSuiteResult,
} from './suite.js';

const pct = (x: number): string => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : '—');
const span = (a: ReadAggregate): string => `${rate(a.range[0])}–${rate(a.range[1])}`;

/** Writes/s of the same driver's "writers alone" scenario (0 read loops). */
function aloneOf(all: readonly ReadAggregate[], a: ReadAggregate): number {
  const alone = all.find(
    (b) => b.kind === a.kind && b.driver === a.driver && b.rows === a.rows && b.readers === 0,
  );
  return alone === undefined ? Number.NaN : a.writesPerSec / alone.writesPerSec;
}

function heavyTable(all: readonly ReadAggregate[]): string[] {
  const rows = all
    .filter((a) => a.kind === 'heavy')
    .sort((a, b) => a.readers - b.readers || a.driver.localeCompare(b.driver));
  if (rows.length === 0) return [];
  return [
    `### Heavy reads beside ${HEAVY_WRITERS} writers (${HEAVY_ROWS.toLocaleString('en-US')} rows; each read a full-table \`LIKE\` scan)`,
    '',
    table(
      [
        'driver',
        'read loops',
        'writes/s (min–max)',
        'of writes alone',
        'heavy reads/s',
        'read p50 ms',
        'write p99 ms',
        'event-loop p99 ms',
        'longest stall ms',
      ],
      rows.map((a) =>
        a.reps === 0
          ? [a.driver, String(a.readers), 'failed', '', '', '', '', '', '']
          : [
              a.driver,
              String(a.readers),
              `${rate(a.writesPerSec)} (${span(a)})`,
              a.readers === 0 ? '(alone)' : pct(aloneOf(all, a)),
              a.readers === 0 ? '—' : a.readsPerSec.toFixed(1),
              a.readers === 0 ? '—' : ms(a.readP50),
              ms(a.writeP99),
              ms(a.loopP99),
              ms(a.loopMax),
            ],
      ),
    ),
    '',
  ];
}

function pointTable(all: readonly ReadAggregate[]): string[] {
  const rows = all.filter((a) => a.kind === 'point').sort((a, b) => a.readers - b.readers);
  if (rows.length === 0) return [];
  const sync = (a: ReadAggregate) =>
    all.find((b) => b.kind === 'point' && b.driver === 'walguard-sync' && b.readers === a.readers);
  return [
    `### Point reads by primary key (${POINT_ROWS.toLocaleString('en-US')} rows), no writes`,
    '',
    table(
      [
        'driver',
        'callers',
        'reads/s (min–max)',
        'vs walguard-sync',
        'read p50 ms',
        'read p99 ms',
        'event-loop p99 ms',
        'longest stall ms',
      ],
      rows.map((a) => {
        const base = sync(a);
        return a.reps === 0
          ? [a.driver, String(a.readers), 'failed', '', '', '', '', '']
          : [
              a.driver,
              String(a.readers),
              `${rate(a.readsPerSec)} (${span(a)})`,
              base === undefined ? '—' : `${ratio(a.readsPerSec / base.readsPerSec)}×`,
              ms(a.readP50),
              ms(a.readP99),
              ms(a.loopP99),
              ms(a.loopMax),
            ];
      }),
    ),
    '',
  ];
}

function recallTable(all: readonly ReadAggregate[]): string[] {
  const rows = all
    .filter((a) => a.kind === 'recall')
    .sort((a, b) => a.rows - b.rows || a.readers - b.readers || a.driver.localeCompare(b.driver));
  if (rows.length === 0) return [];
  return [
    `### Recall (\`MemoryStore.recall\`, k = 10, exact scan, ${RECALL_DIMENSIONS} dimensions) beside ${RECALL_WRITERS} writers adding memories`,
    '',
    table(
      [
        'driver',
        'memories',
        'recall loops',
        'recalls/s',
        'recall p50 ms',
        'writes/s',
        'of writes alone',
        'event-loop p99 ms',
        'longest stall ms',
      ],
      rows.map((a) =>
        a.reps === 0
          ? [
              a.driver,
              a.rows.toLocaleString('en-US'),
              String(a.readers),
              'failed',
              '',
              '',
              '',
              '',
              '',
            ]
          : [
              a.driver,
              a.rows.toLocaleString('en-US'),
              String(a.readers),
              a.readers === 0 ? '—' : a.readsPerSec.toFixed(1),
              a.readers === 0 ? '—' : ms(a.readP50),
              rate(a.writesPerSec),
              a.readers === 0 ? '(alone)' : pct(aloneOf(all, a)),
              ms(a.loopP99),
              ms(a.loopMax),
            ],
      ),
    ),
    '',
  ];
}

function microTables(result: ReadSuiteResult): string[] {
  const micro = result.micro;
  if (micro === undefined) return [];
  if (micro.result === undefined)
    return ['### Main-thread costs', '', `Failed: ${micro.error}`, ''];
  const us = (x: number) => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
  return [
    '### Main-thread costs (tinybench, one operation at a time)',
    '',
    table(
      ['operation', 'mean µs', 'p50 µs', 'p99 µs', '± (rme)', 'samples'],
      micro.result.tasks.map((t) => [
        t.name,
        us(t.meanUs),
        us(t.p50Us),
        us(t.p99Us),
        `${t.rme.toFixed(1)}%`,
        String(t.samples),
      ]),
    ),
    '',
    'Main-thread busy time per operation with 256 concurrent callers (`performance.eventLoopUtilization`; wall time inside callbacks, so a loaded machine inflates it):',
    '',
    table(
      ['operation', 'main-thread busy µs per op', 'ops/s'],
      micro.result.budget.map((b) => [b.name, us(b.busyUs), rate(b.opsPerSec)]),
    ),
    '',
  ];
}

/** The read suite's markdown section. */
export function renderReads(result: ReadSuiteResult): string {
  const lines = [
    '## Reads (issue 13)',
    '',
    "Each trial: a fresh process on a fresh copy of the scenario's database; a warm-up, then a fixed window of concurrent loops, each awaiting its operation before the next. `walguard` runs its defaults; `walguard-sync` runs every read on the main thread without yielding (`readers: { mainThreadMaxUs: Infinity, turnBudgetUs: Infinity }`: how walguard read before reader threads); `naive-client` is `@libsql/client` (`concurrency: 1`); `better-sqlite3` a prepared `get()` behind an async function. Writes are synchronous=FULL inserts. Event-loop figures: `monitorEventLoopDelay({ resolution: 1 })` over the window.",
    '',
    ...heavyTable(result.aggregates),
    ...pointTable(result.aggregates),
    ...recallTable(result.aggregates),
  ];
  lines.push(...microTables(result));
  if (result.targets.length > 0) {
    lines.push(
      '### Read targets',
      '',
      table(
        ['target', 'measured', 'goal', ''],
        result.targets.map((t) => [
          t.name,
          t.unit === 'ms' ? `${ms(t.value)} ms` : `${ratio(t.value)}×`,
          t.target,
          t.met === undefined ? 'info' : t.met ? '**met**' : '**missed**',
        ]),
      ),
      '',
    );
  }
  const notes = result.aggregates.filter((a) => a.notes.length > 0 && a.readers > 0);
  if (notes.length > 0) {
    lines.push("### Where walguard's reads ran (first repetition)", '');
    for (const a of notes) lines.push(`- ${a.key}: ${a.notes.join('; ')}`);
    lines.push('');
  }
  if (result.skipped.length > 0) lines.push(`Skipped: ${result.skipped.join('; ')}`, '');
  const failures = result.aggregates.filter((a) => a.failures.length > 0);
  if (failures.length > 0) {
    lines.push('### Read trial failures', '');
    for (const a of failures)
      for (const f of a.failures) lines.push(`- ${a.key}: ${f.split('\n')[0]}`);
    lines.push('');
  }
  return lines.join('\n');
}
