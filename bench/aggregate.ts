/**
 * Turns trial results into per-scenario medians with their spread, and computes the headline
 * ratios against their targets. Ratios are taken within one run only: the machine is shared,
 * so absolute figures move from run to run and only same-run comparisons mean something.
 */
import { median } from './latency.js';
import { type Group, HEADLINE, type Scenario, scenarioKey } from './plan.js';
import type { DriverName, TrialResult } from './trial-types.js';

/** Median and range of one figure over a scenario's repetitions. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** A scenario's figures over its repetitions. */
export interface Aggregate {
  key: string;
  group: Group;
  driver: DriverName;
  callers: number;
  rowBytes: number;
  readRatio: number;
  /** Units per trial. */
  units: number;
  /** Repetitions that succeeded. */
  reps: number;
  unitsPerSec: Spread;
  writeP50: Spread;
  writeP99: Spread;
  writeMax: Spread;
  readP50: Spread;
  readP99: Spread;
  loopP99: Spread;
  peakRssMiB: Spread;
  commitsPer1000: Spread;
  fsyncMs: Spread;
  commitsSource: TrialResult['commitsSource'];
  settings: TrialResult['settings'];
  sqliteVersion: string;
  /** Notes of the first repetition. */
  notes: string[];
  /** Errors of failed repetitions. */
  failures: string[];
}

/** A ratio between two peers (or a latency check) and its target. */
export interface Ratio {
  /** What is compared, e.g. `walguard-full / naive-client-full (rows/s)`. */
  name: string;
  /** Ratio of the medians. */
  value: number;
  /** Worst and best case over the repetitions (min/max and max/min). */
  low: number;
  high: number;
  /** The target, with its direction. */
  target: { op: '>=' | '<='; value: number } | undefined;
  /** Whether the median meets the target (undefined: no target). */
  met: boolean | undefined;
  /** Unit of `value` and the target: `×` for ratios, `ms` for latency checks. */
  unit: '×' | 'ms';
  /** What the target is checked against, when it is not a ratio of peers. */
  detail?: string;
}

/** One trial's outcome as the runner records it. */
export interface TrialRecord {
  scenario: Scenario;
  rep: number;
  result?: TrialResult;
  error?: string;
  /** Wall time of the child process, in ms. */
  wallMs: number;
}

function spread(values: number[]): Spread {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN };
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** Groups records by scenario and summarises each, in plan order. */
export function aggregate(records: readonly TrialRecord[]): Aggregate[] {
  const byKey = new Map<string, TrialRecord[]>();
  for (const record of records) {
    const key = scenarioKey(record.scenario);
    const list = byKey.get(key);
    if (list === undefined) byKey.set(key, [record]);
    else list.push(record);
  }
  const out: Aggregate[] = [];
  for (const [key, list] of byKey) {
    const s = list[0]!.scenario;
    const ok = list.flatMap((r) => (r.result === undefined ? [] : [r.result]));
    const pick = (f: (r: TrialResult) => number) => spread(ok.map(f));
    out.push({
      key,
      group: s.group,
      driver: s.driver,
      callers: s.params.callers,
      rowBytes: s.params.rowBytes,
      readRatio: s.params.readRatio,
      units: s.params.units,
      reps: ok.length,
      unitsPerSec: pick((r) => r.unitsPerSec),
      writeP50: pick((r) => r.writeLatency.p50),
      writeP99: pick((r) => r.writeLatency.p99),
      writeMax: pick((r) => r.writeLatency.max),
      readP50: pick((r) => r.readLatency.p50),
      readP99: pick((r) => r.readLatency.p99),
      loopP99: pick((r) => r.loopDelay.p99),
      peakRssMiB: pick((r) => r.peakRssMiB),
      commitsPer1000: pick((r) => r.commitsPer1000),
      fsyncMs: pick((r) => r.fsyncMs),
      commitsSource: ok[0]?.commitsSource ?? 'construction',
      settings: ok[0]?.settings ?? { journal_mode: '?', synchronous: -1, cache_size: 0 },
      sqliteVersion: ok[0]?.sqliteVersion ?? '?',
      notes: ok[0]?.notes ?? [],
      failures: list.flatMap((r) => (r.error === undefined ? [] : [r.error])),
    });
  }
  return out;
}

/** The headline aggregate of `driver`, if it ran. */
export function headlineOf(
  aggregates: readonly Aggregate[],
  driver: DriverName,
): Aggregate | undefined {
  return aggregates.find(
    (a) =>
      a.group === 'headline' &&
      a.driver === driver &&
      a.rowBytes === HEADLINE.rowBytes &&
      a.reps > 0,
  );
}

function peerRatio(
  a: Aggregate | undefined,
  b: Aggregate | undefined,
  target: number | undefined,
): Ratio | undefined {
  if (a === undefined || b === undefined) return undefined;
  const value = a.unitsPerSec.median / b.unitsPerSec.median;
  return {
    name: `${a.driver} / ${b.driver} (rows/s)`,
    value,
    low: a.unitsPerSec.min / b.unitsPerSec.max,
    high: a.unitsPerSec.max / b.unitsPerSec.min,
    target: target === undefined ? undefined : { op: '>=', value: target },
    met: target === undefined ? undefined : value >= target,
    unit: '×',
  };
}

/**
 * The headline ratios. On the disk as it is: walguard-full against naive FULL (target
 * >= 15×), naive NORMAL (>= 2×) and the engine's limit (>= 0.5×). On the slow-disk profile:
 * against naive FULL (>= 200×), and walguard's p99 acknowledgement within 3 fsync times.
 */
export function headlineRatios(aggregates: readonly Aggregate[], slowDisk: boolean): Ratio[] {
  const wg = headlineOf(aggregates, 'walguard-full');
  const ratios = [
    peerRatio(wg, headlineOf(aggregates, 'naive-client-full'), slowDisk ? 200 : 15),
    peerRatio(wg, headlineOf(aggregates, 'naive-client-normal'), slowDisk ? undefined : 2),
    peerRatio(wg, headlineOf(aggregates, 'raw-libsql-tx'), slowDisk ? undefined : 0.5),
    peerRatio(wg, headlineOf(aggregates, 'better-sqlite3-tx'), undefined),
    peerRatio(
      headlineOf(aggregates, 'walguard-deferred'),
      headlineOf(aggregates, 'naive-client-normal'),
      undefined,
    ),
  ].filter((r): r is Ratio => r !== undefined);
  if (wg !== undefined) {
    const limit = 3 * wg.fsyncMs.median;
    ratios.push({
      name: 'walguard-full p99 ack latency',
      value: wg.writeP99.median,
      low: wg.writeP99.min,
      high: wg.writeP99.max,
      target: slowDisk ? { op: '<=', value: limit } : undefined,
      met: slowDisk ? wg.writeP99.median <= limit : undefined,
      unit: 'ms',
      detail: `3 fsync times = 3 × ${wg.fsyncMs.median.toFixed(2)} ms (measured in the trial folder)`,
    });
  }
  return ratios;
}

/**
 * The mixed workload's target (issue 13): at 256 callers, walguard-full's write p50 and p99
 * at most naive NORMAL's (its reads no longer crowd out the acknowledgements).
 */
export function mixedRatios(aggregates: readonly Aggregate[]): Ratio[] {
  const at = (driver: DriverName) =>
    aggregates.find(
      (a) => a.group === 'mixed' && a.driver === driver && a.callers === 256 && a.reps > 0,
    );
  const wg = at('walguard-full');
  const naive = at('naive-client-normal');
  if (wg === undefined || naive === undefined) return [];
  return (['writeP50', 'writeP99'] as const).map((field) => {
    const limit = naive[field].median;
    return {
      name: `walguard-full write ${field === 'writeP50' ? 'p50' : 'p99'}, mixed 90/10 at 256 callers`,
      value: wg[field].median,
      low: wg[field].min,
      high: wg[field].max,
      target: { op: '<=', value: limit },
      met: wg[field].median <= limit,
      unit: 'ms',
      detail: `naive-client-normal's ${field === 'writeP50' ? 'p50' : 'p99'} ${limit.toFixed(1)} ms`,
    } satisfies Ratio;
  });
}
