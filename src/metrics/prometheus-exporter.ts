/**
 * Prometheus text export of walguard's metrics, with prom-client.
 *
 * Three sources feed one registry:
 * - `db.stats()`, read at scrape time (counters such as `walguard_commits_total`, gauges such
 *   as `walguard_wal_bytes`, and the recent-window percentiles as `{quantile="…"}` gauges);
 * - the database's own events (`commit`, `checkpoint`, `backup`), observed into histograms
 *   (commit duration, batch size, checkpoint and backup duration), which is what Prometheus
 *   can aggregate across instances and time, unlike precomputed percentiles;
 * - the `node:diagnostics_channel` channels of `channels.ts` for what happens outside any
 *   `Walguard` object's lifetime (integrity checks, corruption and recovery at open): counted
 *   from the moment the exporter exists, so create it before `openDatabase` to see those.
 *
 * Every series has a `database` label: the name given to `watch()`, or the database's path.
 * Nothing secret or row-level is exported (stats and events carry none).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BackupResult } from '../durability/backups.js';
import type { LatencySummary } from '../queue/queue-stats.js';
import type { CheckpointEvent, CommitEvent, WalguardEvents, WalguardStats } from '../walguard.js';
import { type ChannelMessages, subscribe } from './channels.js';

/** What the exporter needs of a database: its path, its stats and its events. */
export interface MetricsSource {
  /** The database's options; `path` names it. */
  readonly options: { readonly path: string };
  /** A snapshot of its counters. */
  stats(): WalguardStats;
  /** Adds an event listener. */
  on<E extends WatchedEvent>(event: E, listener: (...args: WalguardEvents[E]) => void): unknown;
  /** Removes an event listener. */
  off<E extends WatchedEvent>(event: E, listener: (...args: WalguardEvents[E]) => void): unknown;
}

/** The events the exporter observes. */
type WatchedEvent = 'commit' | 'checkpoint' | 'backup';

/** Options of `PrometheusExporter`. */
export interface PrometheusExporterOptions {
  /** The registry to register into (e.g. prom-client's global `register`). Default: a new one. */
  registry?: Registry;
  /** Prefix of every metric name. Default `walguard_`. */
  prefix?: string;
  /** Buckets of the commit and checkpoint duration histograms, in seconds. */
  durationBuckets?: number[];
  /** Buckets of the batch size histogram, in units. */
  batchBuckets?: number[];
}

/** Options of `watch()`. */
export interface WatchOptions {
  /** The `database` label. Default: the database's path. */
  name?: string;
}

/** Default duration buckets: 0.1 ms to 10 s (an fsync is 0.2 ms on a server, 2-20 ms on a laptop). */
const DURATION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
];
/** Default batch size buckets, in units (the default `maxBatchUnits` is 1024). */
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** Counters read from `stats()`: metric suffix, help, value. */
const STAT_COUNTERS: readonly [string, string, (s: WalguardStats) => number][] = [
  ['commits_total', 'Write transactions committed.', (s) => s.commits],
  [
    'relaxed_commits_total',
    'Deferred-only commits made without their own fsync.',
    (s) => s.relaxedCommits,
  ],
  ['units_total', 'Write units acknowledged.', (s) => s.units],
  ['failed_units_total', 'Write units rejected.', (s) => s.failedUnits],
  ['failed_batches_total', 'Batches that failed as a whole.', (s) => s.failedBatches],
  ['deferred_units_total', 'Deferred units applied.', (s) => s.deferredUnits],
  ['deferred_errors_total', 'Deferred units that failed.', (s) => s.deferredErrors],
  ['queue_full_total', 'Callers turned away with QUEUE_FULL.', (s) => s.queueFull],
  ['checkpoints_total', 'Checkpoints run by walguard.', (s) => s.checkpoints],
  [
    'checkpoints_blocked_total',
    'Checkpoints a reader kept from finishing (an old snapshot).',
    (s) => s.checkpointsBlocked,
  ],
  ['backups_total', 'Backups written since open.', (s) => s.backups],
  ['read_streams_total', 'Streams opened (each on a reader thread).', (s) => s.reads.streams],
  [
    'reads_overflowed_total',
    'Cheap reads sent to a reader thread because main-thread reads had used up the event-loop turn.',
    (s) => s.reads.overflowed,
  ],
];

/** Gauges read from `stats()`. */
const STAT_GAUGES: readonly [string, string, (s: WalguardStats) => number][] = [
  ['pending_units', 'Units queued, waiting for room, or in flight.', (s) => s.pending],
  ['deferred_pending_units', 'Deferred units not yet applied.', (s) => s.deferredPending],
  ['pending_bytes', 'Bytes of SQL and parameters waiting in the queue.', (s) => s.pendingBytes],
  ['wal_bytes', 'Size of the -wal file.', (s) => s.walBytes],
  ['largest_batch_units', 'Largest batch so far, in units.', (s) => s.maxBatchUnits],
  ['fullfsync', '1 when fullfsync is on (macOS).', (s) => (s.fullfsync ? 1 : 0)],
  [
    'last_backup_timestamp_seconds',
    'When the last backup since open was taken (0: none).',
    (s) => (s.lastBackup === undefined ? 0 : s.lastBackup.takenAt.getTime() / 1000),
  ],
  [
    'last_checkpoint_duration_seconds',
    'Duration of the last checkpoint walguard ran (0: none).',
    (s) => (s.lastCheckpoint === undefined ? 0 : s.lastCheckpoint.durationMs / 1000),
  ],
  ['reader_threads', 'Reader threads running.', (s) => s.reads.threads],
  ['read_queue_depth', 'Reads waiting for a free reader thread.', (s) => s.reads.queueDepth],
  [
    'read_queue_depth_max',
    'Most reads waiting for a reader thread at once since open.',
    (s) => s.reads.maxQueueDepth,
  ],
];

/** Recent-window percentiles of `stats()`: metric suffix, help, summary, scale. */
const STAT_QUANTILES: readonly [string, string, (s: WalguardStats) => LatencySummary, number][] = [
  [
    'commit_latency_recent_seconds',
    'BEGIN-to-COMMIT time per batch over the last 4096 batches.',
    (s) => s.commitLatencyMs,
    1 / 1000,
  ],
  [
    'ack_latency_recent_seconds',
    'Submission-to-acknowledgement time per critical unit over the last 4096 units.',
    (s) => s.ackLatencyMs,
    1 / 1000,
  ],
  ['batch_size_recent_units', 'Units per batch over the last 4096 batches.', (s) => s.batchSize, 1],
  [
    'main_thread_read_latency_recent_seconds',
    'Statement time per read run on the main thread, over the last 4096.',
    (s) => s.reads.mainLatencyMs,
    1 / 1000,
  ],
  [
    'reader_thread_read_latency_recent_seconds',
    'Call-to-result time per read run on a reader thread (queue and hop included), over the last 4096.',
    (s) => s.reads.poolLatencyMs,
    1 / 1000,
  ],
];

interface Watched {
  db: MetricsSource;
  name: string;
  unwatch: () => void;
}

/** A prom-client registry of walguard's metrics for one or more databases. */
export class PrometheusExporter {
  /** The registry the metrics are in. */
  readonly registry: Registry;
  readonly #watched = new Map<MetricsSource, Watched>();
  readonly #names = new Map<string, string>();
  readonly #unsubscribe: (() => void)[] = [];
  readonly #commitDuration: Histogram<'database' | 'durable'>;
  readonly #batchSize: Histogram<'database'>;
  readonly #checkpointDuration: Histogram<'database' | 'mode'>;
  readonly #backupDuration: Histogram<'database'>;
  readonly #backupBytes: Gauge<'database'>;
  readonly #integrity: Counter<'database' | 'level' | 'result'>;
  readonly #corruption: Counter<'database' | 'source'>;
  readonly #recoveries: Counter<'database'>;
  readonly #errors: Counter<'database' | 'source' | 'code'>;

  constructor(options: PrometheusExporterOptions = {}) {
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    const p = options.prefix ?? 'walguard_';
    const registers = [registry];
    const watched = () => [...this.#watched.values()];

    for (const [suffix, help, read] of STAT_COUNTERS) {
      new Counter({
        name: p + suffix,
        help,
        labelNames: ['database'],
        registers,
        collect() {
          this.reset();
          for (const w of watched()) this.inc({ database: w.name }, read(w.db.stats()));
        },
      });
    }
    new Counter({
      name: `${p}reads_total`,
      help: 'Reads answered, by where they ran: main (the main thread), reader (a reader thread), writer (inside an interactive transaction).',
      labelNames: ['database', 'ran_on'],
      registers,
      collect() {
        this.reset();
        for (const w of watched()) {
          const r = w.db.stats().reads;
          this.inc({ database: w.name, ran_on: 'main' }, r.main);
          this.inc({ database: w.name, ran_on: 'reader' }, r.pool);
          this.inc({ database: w.name, ran_on: 'writer' }, r.writer);
        }
      },
    });
    for (const [suffix, help, read] of STAT_GAUGES) {
      new Gauge({
        name: p + suffix,
        help,
        labelNames: ['database'],
        registers,
        collect() {
          this.reset();
          for (const w of watched()) this.set({ database: w.name }, read(w.db.stats()));
        },
      });
    }
    for (const [suffix, help, summary, scale] of STAT_QUANTILES) {
      new Gauge({
        name: p + suffix,
        help,
        labelNames: ['database', 'quantile'],
        registers,
        collect() {
          this.reset();
          for (const w of watched()) {
            const s = summary(w.db.stats());
            if (s.samples === 0) continue;
            for (const [q, v] of [
              ['0.5', s.p50],
              ['0.9', s.p90],
              ['0.99', s.p99],
              ['1', s.max],
            ] as const) {
              this.set({ database: w.name, quantile: q }, v * scale);
            }
          }
        },
      });
    }
    const durationBuckets = options.durationBuckets ?? DURATION_BUCKETS;
    this.#commitDuration = new Histogram({
      name: `${p}commit_duration_seconds`,
      help: 'BEGIN-to-COMMIT time per batch (durable: committed with the configured synchronous).',
      labelNames: ['database', 'durable'],
      buckets: durationBuckets,
      registers,
    });
    this.#batchSize = new Histogram({
      name: `${p}batch_size_units`,
      help: 'Units per committed batch.',
      labelNames: ['database'],
      buckets: options.batchBuckets ?? BATCH_BUCKETS,
      registers,
    });
    this.#checkpointDuration = new Histogram({
      name: `${p}checkpoint_duration_seconds`,
      help: 'Duration of each checkpoint walguard ran.',
      labelNames: ['database', 'mode'],
      buckets: durationBuckets,
      registers,
    });
    this.#backupDuration = new Histogram({
      name: `${p}backup_duration_seconds`,
      help: 'Duration of each backup (copy, fsync, verification).',
      labelNames: ['database'],
      buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
      registers,
    });
    this.#backupBytes = new Gauge({
      name: `${p}last_backup_size_bytes`,
      help: 'Size of the last backup written.',
      labelNames: ['database'],
      registers,
    });
    this.#integrity = new Counter({
      name: `${p}integrity_checks_total`,
      help: 'Integrity checks run (at open or by check()), by level and result.',
      labelNames: ['database', 'level', 'result'],
      registers,
    });
    this.#corruption = new Counter({
      name: `${p}corruption_events_total`,
      help: 'Times damage was found, by what found it.',
      labelNames: ['database', 'source'],
      registers,
    });
    this.#recoveries = new Counter({
      name: `${p}recoveries_total`,
      help: 'Damaged databases quarantined and replaced by a backup.',
      labelNames: ['database'],
      registers,
    });
    this.#errors = new Counter({
      name: `${p}errors_total`,
      help: 'Failed deferred units, failed batches and failed scheduled backups.',
      labelNames: ['database', 'source', 'code'],
      registers,
    });
    this.#unsubscribe.push(
      subscribe('integrity', (m) =>
        this.#integrity.inc({
          database: this.#label(m.path),
          level: m.level,
          result: m.ok ? 'ok' : 'failed',
        }),
      ),
      subscribe('corruption', (m) =>
        this.#corruption.inc({ database: this.#label(m.path), source: m.source }),
      ),
      subscribe('recovery', (m: ChannelMessages['recovery']) =>
        this.#recoveries.inc({ database: this.#label(m.path) }),
      ),
      subscribe('error', (m) =>
        this.#errors.inc({ database: this.#label(m.path), source: m.source, code: m.code }),
      ),
    );
  }

  /**
   * Exports `db`'s stats and observes its events from now on. Returns the function that stops
   * (also `unwatch(db)`). Watching a database twice is a no-op.
   */
  watch(db: MetricsSource, options: WatchOptions = {}): () => void {
    const existing = this.#watched.get(db);
    if (existing !== undefined) return existing.unwatch;
    const name = options.name ?? db.options.path;
    const onCommit = (e: CommitEvent) => {
      if (e.error !== undefined) return;
      this.#commitDuration.observe(
        { database: name, durable: String(e.durable) },
        e.commitMs / 1000,
      );
      this.#batchSize.observe({ database: name }, e.units);
    };
    const onCheckpoint = (e: CheckpointEvent) => {
      this.#checkpointDuration.observe({ database: name, mode: e.mode }, e.durationMs / 1000);
    };
    const onBackup = (e: Pick<BackupResult, 'bytes' | 'durationMs'>) => {
      this.#backupDuration.observe({ database: name }, e.durationMs / 1000);
      this.#backupBytes.set({ database: name }, e.bytes);
    };
    db.on('commit', onCommit);
    db.on('checkpoint', onCheckpoint);
    db.on('backup', onBackup);
    const unwatch = () => {
      db.off('commit', onCommit);
      db.off('checkpoint', onCheckpoint);
      db.off('backup', onBackup);
      this.#watched.delete(db);
      this.#names.delete(db.options.path);
    };
    this.#watched.set(db, { db, name, unwatch });
    this.#names.set(db.options.path, name);
    return unwatch;
  }

  /** Stops exporting `db`. */
  unwatch(db: MetricsSource): void {
    this.#watched.get(db)?.unwatch();
  }

  /** The metrics in Prometheus' text exposition format. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** The HTTP `Content-Type` of `metrics()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stops watching every database and unsubscribes from the channels. */
  close(): void {
    for (const w of [...this.#watched.values()]) w.unwatch();
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
  }

  /** The `database` label of a path seen on a channel. */
  #label(path: string): string {
    return this.#names.get(path) ?? path;
  }
}

/** One scrape of `db`'s stats in Prometheus text format (no histograms: they need events). */
export async function prometheusText(
  db: MetricsSource,
  options: WatchOptions = {},
): Promise<string> {
  const exporter = new PrometheusExporter();
  exporter.watch(db, options);
  try {
    return await exporter.metrics();
  } finally {
    exporter.close();
  }
}
