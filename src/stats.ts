/** `stats()`: a snapshot of an open database's counters. */
import type { BackupResult } from './durability/backups.js';
import type { SettingsReadBack } from './durability/connection-settings.js';
import type { CheckResult } from './durability/integrity.js';
import type { RecoveryInfo } from './durability/recovery.js';
import type { CheckpointEvent } from './events.js';
import type { PgSettingsReadBack } from './pg/pg-settings.js';
import type { LatencySummary } from './queue/queue-stats.js';

/** A snapshot of the database's counters. */
export interface WalguardStats {
  /** Write transactions committed. */
  commits: number;
  /** Of those, deferred-only commits made without their own fsync. */
  relaxedCommits: number;
  /** Write units acknowledged. */
  units: number;
  /** Write units rejected (their own SQL error, or their batch failed). */
  failedUnits: number;
  /** Batches that failed as a whole. */
  failedBatches: number;
  /** Units queued, waiting for room, or in the batch in flight now. */
  pending: number;
  /** Deferred units not yet applied. */
  deferredPending: number;
  /** Deferred units applied. */
  deferredUnits: number;
  /** Deferred units that failed. */
  deferredErrors: number;
  /** Callers turned away with `QUEUE_FULL`. */
  queueFull: number;
  /** Of those, deferred units that were dropped (never applied) because the queue stayed full. */
  deferredDropped: number;
  /** Bytes of SQL and parameters waiting in the queue. */
  pendingBytes: number;
  /** Size of the `-wal` file now, in bytes. */
  walBytes: number;
  /** Largest batch so far, in units. */
  maxBatchUnits: number;
  /** BEGIN-to-COMMIT time per batch, in ms. */
  commitLatencyMs: LatencySummary;
  /** Submission-to-acknowledgement time per critical unit, in ms. */
  ackLatencyMs: LatencySummary;
  /** Units per batch. */
  batchSize: LatencySummary;
  /** Checkpoints run by walguard. */
  checkpoints: number;
  /** Checkpoints that could not finish because a reader held an old snapshot. */
  checkpointsBlocked: number;
  /** The last checkpoint walguard ran. */
  lastCheckpoint: CheckpointEvent | undefined;
  /** Backups written since open. */
  backups: number;
  /** The last backup written since open. */
  lastBackup: BackupResult | undefined;
  /** Set when this open found the database damaged and restored a backup (`onCorruption: 'restore'`). */
  recovery: RecoveryInfo | undefined;
  /** Batches committed since open, by size in units (`<=1`, `<=2`, … `<=1024`, `>1024`). */
  batchSizeHistogram: Record<string, number>;
  /** `check()` calls since open. */
  integrityChecks: number;
  /** Of those, checks that found damage. */
  integrityFailures: number;
  /** The last `check()` result. */
  lastCheck: CheckResult | undefined;
  /** Whether `fullfsync`/`checkpoint_fullfsync` are on (macOS only). */
  fullfsync: boolean;
  /** Reads: where they ran, the reader threads' queue, and read latency. */
  reads: ReadStats;
  /** The settings as read back from each connection at open (`readerThreads`: one per reader thread; PostgreSQL: from the writer's session and a reader's). */
  settings:
    | { writer: SettingsReadBack; reader: SettingsReadBack; readerThreads: SettingsReadBack[] }
    | { writer: PgSettingsReadBack; reader: PgSettingsReadBack };
}

/** Where reads ran since open, and how long they took (see `repo/read-router.ts`). */
export interface ReadStats {
  /** Reads run on the main thread (cheap by their measured cost). */
  main: number;
  /** Reads run on a reader thread. */
  pool: number;
  /** Of those, cheap reads sent there because main-thread reads had used up the event-loop turn's budget (`readers.turnBudgetUs`). */
  overflowed: number;
  /** Reads run on the writer connection: selects inside interactive transactions. */
  writer: number;
  /** Streams opened (each on a reader thread). */
  streams: number;
  /** Reader threads running. */
  threads: number;
  /** Reads waiting for a free reader thread now. */
  queueDepth: number;
  /** Most reads waiting for a reader thread at once since open. */
  maxQueueDepth: number;
  /** SQL texts whose cost is measured (at most 4096). */
  trackedStatements: number;
  /** Of those, texts that run on a reader thread now (too slow for the main thread, or not yet measured). */
  pooledStatements: number;
  /** Statement time per main-thread read, in ms. */
  mainLatencyMs: LatencySummary;
  /** Call-to-result time per reader-thread read (queue wait and the hop included), in ms. */
  poolLatencyMs: LatencySummary;
}
