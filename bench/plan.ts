/**
 * Which trials a run makes: the headline (`--quick`), or the full matrix (`npm run bench`),
 * on the normal disk or the slow-disk profile. Unit counts differ between peers so that each
 * trial lasts about a second here; every figure is a rate or a latency, so they compare.
 */
import type { DriverName, TrialParams } from './trial-types.js';

/** The tables a run fills. */
export type Group = 'headline' | 'writes' | 'mixed';

/** One trial, repeated `reps` times, each in a fresh process on a fresh database. */
export interface Scenario {
  /** The table it belongs to. */
  group: Group;
  driver: DriverName;
  params: Omit<TrialParams, 'dir'>;
}

/** What `run.ts` was asked for. */
export interface PlanOptions {
  /** Headline only. */
  quick: boolean;
  /** fsync delay of the slow-disk profile in µs, or 0 for the disk as it is. */
  fsyncDelayUs: number;
}

/** Drivers that take concurrent callers. */
export const CALLER_DRIVERS: readonly DriverName[] = [
  'walguard-full',
  'walguard-deferred',
  'naive-client-full',
  'naive-client-normal',
];

/** Drivers that write every row in one call (concurrency does not apply). */
export const BULK_DRIVERS: readonly DriverName[] = [
  'client-batch',
  'raw-libsql-tx',
  'better-sqlite3-tx',
];

/** The headline workload (issue 2): 256 callers, 200-byte rows, FULL. */
export const HEADLINE = { callers: 256, rowBytes: 200 } as const;

/** Full mode's matrix. */
export const CONCURRENCY = [1, 16, 256, 1024] as const;
export const ROW_BYTES = [100, 1024, 16 * 1024] as const;
/** Mixed workloads: 90% reads, over this many preloaded rows. */
export const MIXED = { readRatio: 0.9, preloadRows: 10_000, rowBytes: 200, callers: [16, 256] };
export const MIXED_DRIVERS: readonly DriverName[] = [
  'walguard-full',
  'naive-client-full',
  'naive-client-normal',
];

/**
 * Units for one trial, sized for about a second each here (0.2 ms fsync) and on the slow
 * disk, so that JIT warm-up weighs about the same in every peer's figure (a 0.1 s trial is
 * mostly warm-up). The bulk peers (one call) stay at 20k rows: they run a tight loop. A FULL commit per unit (naive-client-full; walguard-full with one caller) costs an
 * fsync each, so those trials get fewer units; big rows get fewer too.
 */
export function unitsFor(
  driver: DriverName,
  callers: number,
  rowBytes: number,
  readRatio: number,
  fsyncDelayUs: number,
): number {
  const big = rowBytes >= 16 * 1024;
  const slow = fsyncDelayUs > 0;
  // Mixed workloads: the same writes plus the reads around them, capped at 30k operations
  // (reads are cheap, not free: that keeps a trial near a second).
  const scale = (writes: number) =>
    readRatio > 0 ? Math.min(Math.round(writes / (1 - readRatio)), 30_000) : writes;
  switch (driver) {
    case 'client-batch':
    case 'raw-libsql-tx':
    case 'better-sqlite3-tx':
      return big ? 4000 : 20_000;
    case 'walguard-deferred':
      return big ? 4000 : 60_000;
    case 'walguard-full': {
      // At most `callers` units share one fsync.
      const perCommit = slow ? 150 : 2000;
      return scale(Math.min(big ? 4000 : slow ? 20_000 : 60_000, perCommit * callers));
    }
    case 'naive-client-full':
      return scale(slow ? 300 : big ? 1000 : 3000);
    case 'naive-client-normal':
      return scale(big ? 1000 : 20_000);
  }
}

function scenario(
  group: Group,
  driver: DriverName,
  callers: number,
  rowBytes: number,
  options: PlanOptions,
  mixed = false,
): Scenario {
  const readRatio = mixed ? MIXED.readRatio : 0;
  return {
    group,
    driver,
    params: {
      units: unitsFor(driver, callers, rowBytes, readRatio, options.fsyncDelayUs),
      callers: BULK_DRIVERS.includes(driver) ? 1 : callers,
      rowBytes,
      readRatio,
      preloadRows: mixed ? MIXED.preloadRows : 0,
    },
  };
}

/** The scenarios of a run, for the drivers available. */
export function buildPlan(options: PlanOptions, drivers: readonly DriverName[]): Scenario[] {
  const has = (d: DriverName) => drivers.includes(d);
  const out: Scenario[] = [];
  for (const driver of [...CALLER_DRIVERS, ...BULK_DRIVERS].filter(has)) {
    out.push(scenario('headline', driver, HEADLINE.callers, HEADLINE.rowBytes, options));
  }
  if (options.quick) return out;
  for (const rowBytes of ROW_BYTES) {
    for (const callers of CONCURRENCY) {
      for (const driver of CALLER_DRIVERS.filter(has)) {
        out.push(scenario('writes', driver, callers, rowBytes, options));
      }
    }
    for (const driver of BULK_DRIVERS.filter(has)) {
      out.push(scenario('writes', driver, 1, rowBytes, options));
    }
  }
  for (const callers of MIXED.callers) {
    for (const driver of MIXED_DRIVERS.filter(has)) {
      out.push(scenario('mixed', driver, callers, MIXED.rowBytes, options, true));
    }
  }
  return out;
}

/** A key that identifies a scenario across its repetitions. */
export function scenarioKey(s: Scenario): string {
  const p = s.params;
  return `${s.group}|${s.driver}|c${p.callers}|b${p.rowBytes}|r${p.readRatio}`;
}
