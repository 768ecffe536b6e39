/**
 * Latency samples and their summaries. Samples go into a preallocated `Float64Array`, so
 * recording one costs a store, not an allocation, inside the timed section.
 */
import type { LatencySummary } from './trial-types.js';

/** A growable list of latency samples, in ms. */
export class LatencyRecorder {
  #samples: Float64Array;
  #count = 0;

  constructor(expected: number) {
    this.#samples = new Float64Array(Math.max(16, expected));
  }

  /** Records one sample. */
  add(ms: number): void {
    if (this.#count === this.#samples.length) {
      const grown = new Float64Array(this.#samples.length * 2);
      grown.set(this.#samples);
      this.#samples = grown;
    }
    this.#samples[this.#count++] = ms;
  }

  /** p50, p99 and max of the samples (zeros when there are none). */
  summary(): LatencySummary {
    return summarize(this.#samples.subarray(0, this.#count));
  }
}

/** p50, p99 and max of `samples` (nearest-rank), in their unit. */
export function summarize(samples: ArrayLike<number>): LatencySummary {
  const count = samples.length;
  if (count === 0) return { count: 0, p50: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(samples).sort();
  return {
    count,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[count - 1]!,
  };
}

/** The nearest-rank quantile `q` (0..1) of ascending `sorted`. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** Median of `values` (mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
