/**
 * Renders a run as markdown: what ran where, the headline table and its ratios against their
 * targets, the full-mode matrices, where a peer beats walguard, and failures.
 */
import { type Aggregate, mixedRatios, type Ratio, type Spread } from './aggregate.js';
import { BULK_DRIVERS, HEADLINE, MIXED, ROW_BYTES } from './plan.js';
import { DRIVER_NAMES, type DriverName } from './trial-types.js';

/** Where and how a run was made. */
export interface RunMeta {
  /** ISO timestamp of the start. */
  date: string;
  /** `quick`, `full`, with `-slow-disk` when so. */
  label: string;
  /** The command that reruns it. */
  command: string;
  machine: { cpu: string; cores: number; memoryGiB: number; os: string };
  node: string;
  /** Package versions (walguard's own from package.json). */
  versions: Record<string, string>;
  /** `sqlite_version()` per driver, as each reported it. */
  sqlite: Partial<Record<DriverName, string>>;
  profile: { slowDisk: boolean; fsyncDelayUs: number; shim?: string };
  reps: number;
  /** Drivers left out, with why. */
  skipped: string[];
  /** Wall time of the run, in s. */
  totalSeconds: number;
}

export const ms = (x: number): string =>
  Number.isNaN(x) ? '—' : x < 1 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0);

export const rate = (x: number): string => {
  if (Number.isNaN(x)) return '—';
  if (x >= 100_000) return `${(x / 1000).toFixed(0)}k`;
  if (x >= 1000) return `${(x / 1000).toFixed(1)}k`;
  return x.toFixed(0);
};

const rateSpread = (s: Spread): string => `${rate(s.median)} (${rate(s.min)}–${rate(s.max)})`;

/** Two decimals below 10, so that a ratio just short of its target never prints as the target. */
export const ratio = (x: number): string =>
  x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);

const bytes = (b: number): string => (b >= 1024 ? `${b / 1024} KiB` : `${b} B`);

const isBulk = (d: DriverName) => BULK_DRIVERS.includes(d);

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function byDriverOrder(a: Aggregate, b: Aggregate): number {
  return DRIVER_NAMES.indexOf(a.driver) - DRIVER_NAMES.indexOf(b.driver);
}

function headlineTable(aggregates: Aggregate[]): string {
  const rows = aggregates
    .filter((a) => a.group === 'headline')
    .sort(byDriverOrder)
    .map((a) => {
      const bulk = isBulk(a.driver);
      return [
        a.driver,
        a.reps === 0 ? 'failed' : String(a.units),
        rateSpread(a.unitsPerSec),
        bulk ? `(one call) ${ms(a.writeP50.median)}` : ms(a.writeP50.median),
        bulk ? '—' : ms(a.writeP99.median),
        bulk ? '—' : ms(a.writeMax.median),
        ms(a.loopP99.median),
        a.peakRssMiB.median.toFixed(0),
        a.commitsPer1000.median < 1
          ? a.commitsPer1000.median.toFixed(2)
          : a.commitsPer1000.median.toFixed(1),
      ];
    });
  return table(
    [
      'driver',
      'rows',
      'rows/s median (min–max)',
      'ack p50 ms',
      'ack p99 ms',
      'ack max ms',
      'event-loop p99 ms',
      'peak RSS MiB',
      'commits / 1k rows',
    ],
    rows,
  );
}

function ratioTable(ratios: Ratio[]): string {
  const rows = ratios.map((r) => {
    const value = r.unit === '×' ? `${ratio(r.value)}×` : `${ms(r.value)} ms`;
    const range =
      r.unit === '×' ? `${ratio(r.low)}–${ratio(r.high)}×` : `${ms(r.low)}–${ms(r.high)} ms`;
    const target =
      r.target === undefined
        ? '—'
        : `${r.target.op === '>=' ? '≥' : '≤'} ${r.unit === '×' ? `${r.target.value}×` : `${ms(r.target.value)} ms`}`;
    const met = r.met === undefined ? 'info' : r.met ? '**met**' : '**missed**';
    return [r.name + (r.detail ? ` — ${r.detail}` : ''), value, range, target, met];
  });
  return table(['comparison', 'median', 'range over reps', 'target', ''], rows);
}

function writesTables(aggregates: Aggregate[]): string[] {
  const out: string[] = [];
  const writes = aggregates.filter((a) => a.group === 'writes');
  if (writes.length === 0) return out;
  const concurrency = [
    ...new Set(writes.filter((a) => !isBulk(a.driver)).map((a) => a.callers)),
  ].sort((a, b) => a - b);
  for (const rowBytes of ROW_BYTES) {
    const here = writes.filter((a) => a.rowBytes === rowBytes).sort(byDriverOrder);
    if (here.length === 0) continue;
    const drivers = [...new Set(here.map((a) => a.driver))];
    const rows = drivers.map((driver) => {
      const cells = concurrency.map((c) => {
        const a = here.find((x) => x.driver === driver && (isBulk(driver) || x.callers === c));
        if (a === undefined || a.reps === 0) return a === undefined ? '' : 'failed';
        if (isBulk(driver))
          return c === concurrency[0] ? `${rate(a.unitsPerSec.median)}/s (one call)` : '″';
        return `${rate(a.unitsPerSec.median)}/s · p99 ${ms(a.writeP99.median)} ms · loop ${ms(a.loopP99.median)} ms`;
      });
      return [driver, ...cells];
    });
    out.push(
      `### ${bytes(rowBytes)} rows: rows/s (median) · ack p99 · event-loop p99, by concurrent callers`,
      '',
      table(['driver', ...concurrency.map((c) => `${c} caller${c === 1 ? '' : 's'}`)], rows),
      '',
    );
  }
  return out;
}

function mixedTable(aggregates: Aggregate[]): string[] {
  const mixed = aggregates
    .filter((a) => a.group === 'mixed')
    .sort((a, b) => a.callers - b.callers || byDriverOrder(a, b));
  if (mixed.length === 0) return [];
  const rows = mixed.map((a) => [
    a.driver,
    String(a.callers),
    String(a.units),
    a.reps === 0 ? 'failed' : rateSpread(a.unitsPerSec),
    ms(a.writeP50.median),
    ms(a.writeP99.median),
    ms(a.readP50.median),
    ms(a.readP99.median),
    ms(a.loopP99.median),
  ]);
  return [
    `### Mixed: ${Math.round(MIXED.readRatio * 100)}% reads / ${Math.round((1 - MIXED.readRatio) * 100)}% writes, ${MIXED.rowBytes}-byte rows, ${MIXED.preloadRows} rows preloaded`,
    '',
    table(
      [
        'driver',
        'callers',
        'ops',
        'ops/s median (min–max)',
        'write p50 ms',
        'write p99 ms',
        'read p50 ms',
        'read p99 ms',
        'event-loop p99 ms',
      ],
      rows,
    ),
    '',
  ];
}

/** Scenarios where a peer does better than walguard-full on the same workload. */
export function peerWins(aggregates: Aggregate[]): string[] {
  const wins: string[] = [];
  const ok = aggregates.filter((a) => a.reps > 0);
  for (const a of ok) {
    // walguard-deferred is walguard itself, with a weaker promise: not a peer.
    if (a.driver === 'walguard-full' || a.driver === 'walguard-deferred') continue;
    const candidates = ok.filter(
      (w) =>
        w.driver === 'walguard-full' &&
        w.group === a.group &&
        w.rowBytes === a.rowBytes &&
        w.readRatio === a.readRatio,
    );
    // A bulk peer has no callers: compare it with walguard-full at its best concurrency.
    const wg = isBulk(a.driver)
      ? candidates.sort((x, y) => y.unitsPerSec.median - x.unitsPerSec.median)[0]
      : candidates.find((w) => w.callers === a.callers);
    if (wg === undefined) continue;
    const where = `${a.group}, ${bytes(a.rowBytes)} rows${isBulk(a.driver) ? ` (vs walguard-full at ${wg.callers} callers)` : `, ${a.callers} caller${a.callers === 1 ? '' : 's'}`}${a.readRatio > 0 ? `, ${Math.round(a.readRatio * 100)}% reads` : ''}`;
    if (a.unitsPerSec.median > wg.unitsPerSec.median) {
      wins.push(
        `${a.driver} is faster (${rate(a.unitsPerSec.median)}/s vs ${rate(wg.unitsPerSec.median)}/s, ${ratio(a.unitsPerSec.median / wg.unitsPerSec.median)}×) — ${where}`,
      );
    }
    if (!isBulk(a.driver) && a.writeP50.median < wg.writeP50.median) {
      wins.push(
        `${a.driver} acknowledges sooner at p50 (${ms(a.writeP50.median)} ms vs ${ms(wg.writeP50.median)} ms) — ${where}`,
      );
    }
    if (!isBulk(a.driver) && a.loopP99.median < wg.loopP99.median) {
      wins.push(
        `${a.driver} keeps the event loop freer at p99 (${ms(a.loopP99.median)} ms vs ${ms(wg.loopP99.median)} ms) — ${where}`,
      );
    }
  }
  return wins;
}

/** The whole report. */
export function renderReport(meta: RunMeta, aggregates: Aggregate[], ratios: Ratio[]): string {
  const versions = Object.entries(meta.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const sqlite = [...new Set(Object.entries(meta.sqlite).map(([d, v]) => `${v} (${d})`))];
  const fsync = aggregates.flatMap((a) => (a.reps > 0 ? [a.fsyncMs.median] : []));
  const fsyncMedian =
    fsync.length > 0 ? [...fsync].sort((a, b) => a - b)[fsync.length >> 1]! : Number.NaN;
  const lines: string[] = [
    `# walguard benchmarks — ${meta.label}`,
    '',
    `- Date: ${meta.date}`,
    `- Command: \`${meta.command}\``,
    `- Machine: ${meta.machine.cpu}, ${meta.machine.cores} cores, ${meta.machine.memoryGiB.toFixed(1)} GiB, ${meta.machine.os} (shared with other work: compare within this run only)`,
    `- Node ${meta.node}; ${versions}`,
    `- SQLite: ${sqlite.join('; ') || '?'}`,
    meta.profile.slowDisk
      ? `- Disk: slow-disk profile — \`LD_PRELOAD=${meta.profile.shim}\` delays every fsync in the trial folder by ${meta.profile.fsyncDelayUs} µs; measured fsync (4 KiB) median ${ms(fsyncMedian)} ms`
      : `- Disk: as it is; measured fsync (4 KiB) median ${ms(fsyncMedian)} ms`,
    `- Each trial: a fresh process, a fresh database (WAL, same PRAGMAs for every peer), ${meta.reps} repetitions; figures are medians (min–max over repetitions)`,
    `- Run time: ${meta.totalSeconds.toFixed(0)} s`,
    ...(meta.skipped.length > 0 ? [`- Skipped: ${meta.skipped.join('; ')}`] : []),
    '',
  ];
  if (aggregates.some((a) => a.group === 'headline')) {
    lines.push(
      `## Headline: ${HEADLINE.callers} concurrent callers, ${HEADLINE.rowBytes}-byte rows, synchronous=FULL${meta.profile.slowDisk ? ', slow disk' : ''}`,
      '',
      headlineTable(aggregates),
      '',
      'Ack latency is per call, from the call to its promise resolving (bulk drivers: the one call). `walguard-deferred` resolves when queued; its rows/s counts `close()`, which flushes and commits them. naive-client-normal is synchronous=NORMAL.',
      '',
      ratioTable(ratios),
      '',
    );
  }
  const writes = writesTables(aggregates);
  if (writes.length > 0)
    lines.push(
      '## Writes by row size and concurrency (synchronous=FULL unless named)',
      '',
      ...writes,
    );
  const mixed = mixedTable(aggregates);
  if (mixed.length > 0) {
    lines.push('## Mixed reads and writes', '', ...mixed);
    const targets = mixedRatios(aggregates);
    if (targets.length > 0) lines.push(ratioTable(targets), '');
  }
  const notes = aggregates.filter(
    (a) => a.notes.length > 0 && (a.group === 'headline' || a.group === 'mixed'),
  );
  if (notes.length > 0) {
    lines.push('## Observations from the trials', '');
    const seen = new Set<string>();
    for (const a of notes) {
      if (seen.has(a.driver)) continue;
      seen.add(a.driver);
      for (const n of a.notes) lines.push(`- ${a.driver} (${a.group}, ${a.callers} callers): ${n}`);
    }
    lines.push('');
  }
  const wins = peerWins(aggregates);
  lines.push(
    '## Where a peer wins',
    '',
    ...(wins.length > 0 ? wins.map((w) => `- ${w}`) : ['- nowhere in this run']),
    '',
  );
  const failures = aggregates.filter((a) => a.failures.length > 0);
  if (failures.length > 0) {
    lines.push('## Failures', '');
    for (const a of failures)
      for (const f of a.failures) lines.push(`- ${a.key}: ${f.split('\n')[0]}`);
    lines.push('');
  }
  return lines.join('\n');
}
