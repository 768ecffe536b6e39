/**
 * Where deferred units' failures go, since no caller awaits them (contract line 4): the
 * `error` event, `stats()`, and the log — at most one log line per second and kind, with
 * counts, however many units fail. A burst of 80,000 units turned away by a full queue once
 * wrote 80,000 error lines with stacks (58 MB of stderr).
 *
 * - A unit whose SQL failed (or whose batch failed): the `error` event for each, the log for
 *   the first of each second with the count of the others.
 * - A unit dropped because the queue stayed full (`QUEUE_FULL`): counted in
 *   `stats().deferredDropped` by the queue; one warning per second saying how many, and one
 *   `error` event per warning (not per unit: a handler that logs would flood just the same).
 */
import type { Logger } from 'pino';

/** How often a kind of failure is logged at most, in ms. */
const LOG_INTERVAL_MS = 1000;

/** Failures of one kind since the last line logged. */
class Window {
  /** When the last line was logged (ms since the epoch), 0 before the first. */
  #loggedAt = 0;
  /** Failures since then that were not logged. */
  #untold = 0;
  /** The first of those. */
  #first: Error | undefined;
  /** Logs the untold ones at the end of the interval, when no new failure does it first. */
  #timer: NodeJS.Timeout | undefined;
  /** Writes the line: how many, and the first. */
  readonly #log: (count: number, first: Error) => void;

  constructor(log: (count: number, first: Error) => void) {
    this.#log = log;
  }

  /** Counts one failure; logs now when the last line is older than the interval. */
  add(error: Error): void {
    this.#untold++;
    this.#first ??= error;
    if (Date.now() - this.#loggedAt >= LOG_INTERVAL_MS) this.tell();
    else this.#timer ??= setTimeout(() => this.tell(), LOG_INTERVAL_MS).unref();
  }

  /** Logs the failures not yet logged, if any. */
  tell(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const first = this.#first;
    if (first === undefined) return;
    const count = this.#untold;
    this.#untold = 0;
    this.#first = undefined;
    this.#loggedAt = Date.now();
    this.#log(count, first);
  }
}

export class DeferredFailures {
  /** Reports one error on the `error` event (and the metrics channel). */
  readonly #emit: (error: Error) => void;
  readonly #failed: Window;
  readonly #dropped: Window;

  constructor(logger: Logger, emit: (error: Error) => void) {
    this.#emit = emit;
    this.#failed = new Window((n, first) => {
      const code = (first as { code?: string }).code;
      const msg = n === 1 ? 'a deferred write failed' : `${n} deferred writes failed`;
      logger.error({ err: first, code, failed: n }, msg);
    });
    this.#dropped = new Window((n, first) => {
      logger.warn(
        { code: 'QUEUE_FULL', dropped: n, reason: first.message },
        `${n} deferred write${n === 1 ? ' was' : 's were'} dropped: the write queue stayed full (maxPendingBytes, maxWaitingCallers, queueTimeoutMs); stats().deferredDropped counts them all`,
      );
      emit(first);
    });
  }

  /** A deferred unit failed: its own SQL error, or its batch's. */
  failed(error: Error): void {
    this.#emit(error);
    this.#failed.add(error);
  }

  /** A deferred unit was turned away by a full queue and will never be applied. */
  dropped(error: Error): void {
    this.#dropped.add(error);
  }

  /** Logs what is still untold and stops the timers (at close). */
  flush(): void {
    this.#failed.tell();
    this.#dropped.tell();
  }
}
