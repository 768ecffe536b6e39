/**
 * What crosses from `run.ts` to a trial process (`TrialParams`, as a JSON argument) and back
 * (`TrialResult`, as one JSON line on stdout).
 */

/** Every driver the suite knows, in the order tables list them. */
export const DRIVER_NAMES = [
  'walguard-full',
  'walguard-deferred',
  'naive-client-full',
  'naive-client-normal',
  'client-batch',
  'raw-libsql-tx',
  'better-sqlite3-tx',
] as const;

/** A driver's name. */
export type DriverName = (typeof DRIVER_NAMES)[number];

/** The workload of one trial. */
export interface TrialParams {
  /** Folder of this trial's database; created empty by the runner (`trial.ts` makes one when absent). */
  dir?: string;
  /** Units to run: rows to insert, or (with `readRatio` > 0) operations, reads and writes together. */
  units: number;
  /** Concurrent callers, each awaiting its unit before it starts the next (1 for bulk drivers). */
  callers: number;
  /** Bytes of the `payload` of each inserted row. */
  rowBytes: number;
  /** Share of operations that are reads (0: writes only; 0.9: 9 reads for each write). */
  readRatio: number;
  /** Rows inserted before the timed section, so that reads find something. */
  preloadRows: number;
}

/** Percentiles of a set of latencies, in ms. */
export interface LatencySummary {
  /** Samples summarised. */
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** What one trial measured. */
export interface TrialResult {
  driver: DriverName;
  params: TrialParams;
  /** Units completed (writes acknowledged plus reads answered). */
  units: number;
  /** Of those, writes. */
  writes: number;
  /** Timed section: from the first call to the last acknowledgement (`walguard-deferred`: to the end of `close()`). */
  elapsedMs: number;
  /** `units / elapsed`. */
  unitsPerSec: number;
  /** Call-to-resolve latency of each write, per caller. */
  writeLatency: LatencySummary;
  /** Call-to-resolve latency of each read (mixed workloads). */
  readLatency: LatencySummary;
  /** Main-thread event-loop delay over the timed section (`monitorEventLoopDelay`, 1 ms resolution), in ms. */
  loopDelay: { p99: number; max: number };
  /** Peak resident set size of the trial process (all threads), in MiB. */
  peakRssMiB: number;
  /** Write transactions committed in the timed section, when known. */
  commits: number;
  /** Commits per 1,000 write units. */
  commitsPer1000: number;
  /** Where the commit count comes from: `stats()`, or by construction of the driver. */
  commitsSource: 'stats' | 'construction';
  /** Settings read back on the connection that wrote. */
  settings: { journal_mode: string; synchronous: number; cache_size: number };
  /** `sqlite_version()` of the driver's engine. */
  sqliteVersion: string;
  /** Median time of one 4 KiB write + fsync in the trial's folder, in ms (what "one fsync" costs here). */
  fsyncMs: number;
  /** Rows in the table after the trial, counted by a fresh connection. */
  rowsAfter: number;
  /** Driver-specific observations (e.g. pragma read-back on a second pooled connection). */
  notes: string[];
}

/** The marker that starts the result line a trial prints. */
export const RESULT_MARKER = '@@walguard-bench-result ';
