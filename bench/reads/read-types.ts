/**
 * What crosses from the read suite's runner (`suite.ts`) to one read trial (`trial.ts`, a
 * process of its own) and back.
 */
import type { LatencySummary } from '../trial-types.js';

/** The read scenarios (issue 13). */
export type ReadScenarioKind =
  /** N concurrent writers, beside L loops of one heavy read each (a full-table `LIKE` scan). */
  | 'heavy'
  /** Point reads by primary key: one awaited loop, or many concurrent callers. */
  | 'point'
  /** `MemoryStore.recall` (exact scans) in L loops, beside N concurrent writers adding memories. */
  | 'recall';

/** The peers of the read suite. */
export const READ_DRIVERS = [
  'walguard',
  'walguard-sync',
  'naive-client',
  'better-sqlite3',
] as const;

/** A read peer's name. */
export type ReadDriverName = (typeof READ_DRIVERS)[number];

/** One read trial's workload. */
export interface ReadTrialParams {
  scenario: ReadScenarioKind;
  /** Folder holding `bench.db`, a fresh copy of the scenario's prepared database. */
  dir: string;
  /** The timed window, in ms. */
  durationMs: number;
  /** Untimed warm-up of the same workload first, in ms. */
  warmupMs: number;
  /** Concurrent writers (0: none). */
  writers: number;
  /** Concurrent read loops (heavy, recall) or callers (point). */
  readers: number;
  /** Rows in the table (point reads pick ids in 1..rows). */
  rows: number;
  /** Embedding dimensions (recall). */
  dimensions: number;
  /** walguard's `readers.threads` (default: its own default), for sizing experiments by hand. */
  readerThreads?: number;
}

/** What one read trial measured. */
export interface ReadTrialResult {
  driver: ReadDriverName;
  params: ReadTrialParams;
  /** Length of the timed window actually run (the last operations may end after it), in ms. */
  elapsedMs: number;
  /** Writes acknowledged per second. */
  writesPerSec: number;
  /** Reads (or recalls) answered per second. */
  readsPerSec: number;
  /** Call-to-result latency of each write. */
  writeLatency: LatencySummary;
  /** Call-to-result latency of each read. */
  readLatency: LatencySummary;
  /** Main-thread event-loop delay over the window (`monitorEventLoopDelay`, 1 ms resolution): p99 and the longest stall, in ms. */
  loopDelay: { p99: number; max: number };
  /** Driver-specific observations (walguard: where its reads ran). */
  notes: string[];
}
