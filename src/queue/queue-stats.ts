/**
 * Counters and latency samples of the write queue, kept cheaply on the hot path (a few
 * additions and one array store per batch) and summarised only when `stats()` is called.
 */

/** Latency percentiles over the most recent samples, in ms. */
export interface LatencySummary {
  /** Samples the percentiles were computed from (at most the window size). */
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** A fixed window of the most recent samples. */
export class LatencyWindow {
  readonly #samples: Float64Array;
  #count = 0;
  #next = 0;

  constructor(size = 4096) {
    this.#samples = new Float64Array(size);
  }

  /** Records one sample. */
  add(ms: number): void {
    this.#samples[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#count < this.#samples.length) this.#count++;
  }

  /** Percentiles of the samples in the window (zeros when empty). */
  summary(): LatencySummary {
    if (this.#count === 0) return { samples: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    const sorted = this.#samples.slice(0, this.#count).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return {
      samples: this.#count,
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
      max: sorted[sorted.length - 1]!,
    };
  }
}

/** Counts of the write queue since open. */
export class QueueStats {
  /** Write transactions committed. */
  commits = 0;
  /** Of those, commits made without their own fsync (deferred-only batches). */
  relaxedCommits = 0;
  /** Batches that failed as a whole (COMMIT or transaction error). */
  failedBatches = 0;
  /** Units acknowledged (their batch committed and they succeeded). */
  units = 0;
  /** Units rejected (their own SQL error, or their batch failed). */
  failedUnits = 0;
  /** Deferred units applied. */
  deferredUnits = 0;
  /** Deferred units that failed (their errors went to the logger and the `error` event). */
  deferredErrors = 0;
  /** Callers turned away with `QUEUE_FULL`. */
  queueFull = 0;
  /** Of those, deferred units: not applied (the queue stayed past its bounds), never retried. */
  deferredDropped = 0;
  /** Largest batch so far, in units. */
  maxBatchUnits = 0;
  /** Time from BEGIN to the end of COMMIT, per batch. */
  readonly commitLatency = new LatencyWindow();
  /** Time from submission to acknowledgement, per critical unit. */
  readonly ackLatency = new LatencyWindow();
  /** Batch sizes, in units. */
  readonly batchSizes = new LatencyWindow(1024);
  /** Batches committed since open, by size: counts per bucket of `BATCH_SIZE_BUCKETS`. */
  readonly batchSizeHistogram = new Array<number>(BATCH_SIZE_BUCKETS.length + 1).fill(0);

  /** The counters and latency summaries, as `stats()` reports them. */
  snapshot() {
    return {
      commits: this.commits,
      relaxedCommits: this.relaxedCommits,
      units: this.units,
      failedUnits: this.failedUnits,
      failedBatches: this.failedBatches,
      deferredUnits: this.deferredUnits,
      deferredErrors: this.deferredErrors,
      queueFull: this.queueFull,
      deferredDropped: this.deferredDropped,
      maxBatchUnits: this.maxBatchUnits,
      commitLatencyMs: this.commitLatency.summary(),
      ackLatencyMs: this.ackLatency.summary(),
      batchSize: this.batchSizes.summary(),
      batchSizeHistogram: labelBatchSizes(this.batchSizeHistogram),
    };
  }

  /** Records one committed batch's size. */
  addBatchSize(units: number): void {
    this.batchSizes.add(units);
    let bucket = 0;
    while (bucket < BATCH_SIZE_BUCKETS.length && units > BATCH_SIZE_BUCKETS[bucket]!) bucket++;
    this.batchSizeHistogram[bucket]!++;
  }
}

/** Upper bounds (inclusive) of the batch size histogram's buckets; the last bucket is open. */
export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] as const;

/** The batch size histogram's labels (`<=1`, `<=2`, … `<=1024`, `>1024`) with their counts. */
export function labelBatchSizes(counts: readonly number[]): Record<string, number> {
  const last = BATCH_SIZE_BUCKETS.length;
  return Object.fromEntries(
    counts.map((n, i) => [
      i < last ? `<=${BATCH_SIZE_BUCKETS[i]}` : `>${BATCH_SIZE_BUCKETS[last - 1]}`,
      n,
    ]),
  );
}
