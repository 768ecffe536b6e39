/**
 * The shape every benchmarked peer takes. A driver owns its connection(s) to one database
 * file; `trial.ts` drives it and does all the timing, so every peer is measured the same way.
 */
import type { DriverName } from '../trial-types.js';

/** Settings as read back from the connection that writes. */
export interface ReadBack {
  journal_mode: string;
  synchronous: number;
  cache_size: number;
}

/** What a driver reports once open. */
export interface OpenInfo {
  /** Settings read back on the writing connection. */
  settings: ReadBack;
  /** `sqlite_version()` of the engine it runs. */
  sqliteVersion: string;
}

/** Commits made by the timed section, and where that count comes from. */
export interface CommitCount {
  /** Write transactions committed. */
  commits: number;
  /** `stats`: counted by the library; `construction`: follows from how the driver writes. */
  source: 'stats' | 'construction';
}

/** One benchmarked peer. */
export interface Driver {
  /** Its name in tables. */
  readonly name: DriverName;
  /** `callers`: N concurrent callers, one unit per call. `bulk`: every row in one call. */
  readonly shape: 'callers' | 'bulk';
  /** Opens its connection(s) on an existing database file and applies the settings. Not timed. */
  open(file: string): Promise<OpenInfo>;
  /** Inserts one row; resolves when the library acknowledges it (`callers` drivers). */
  insert(payload: string): Promise<unknown>;
  /** Reads the row with `id` (`callers` drivers, mixed workloads). */
  read(id: number): Promise<unknown>;
  /** Inserts every row in one call (`bulk` drivers). */
  insertAll(payloads: readonly string[]): Promise<void>;
  /** What must finish before the timed work counts as done (default: nothing). Timed. */
  finishTimed(): Promise<void>;
  /** Commits made so far; called after `finishTimed`. */
  commits(writes: number): CommitCount;
  /** Observations after the timed section (e.g. a pragma probe on a second connection). */
  notes(): Promise<string[]>;
  /** Closes everything still open. Not timed. */
  close(): Promise<void>;
}

/** Refuses an operation a driver's shape does not have. */
export function unsupported(driver: DriverName, operation: string): Promise<never> {
  return Promise.reject(new Error(`The ${driver} driver does not support ${operation}`));
}
