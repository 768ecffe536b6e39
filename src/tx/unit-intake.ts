/**
 * Turns calls into units on the write queue: `write()` and Kysely writes (`submit`), and
 * `defer()`. Every error a caller of `submit` receives carries the caller's stack: the
 * rejection is settled from the queue (its own stack ends in p-queue and MessagePort frames),
 * so the stack of the awaiting callers is appended, as Kysely's PostgreSQL driver does.
 * Deferred units' failures go to `DeferredFailures` (nobody awaits them; capturing each
 * `defer()` call's stack up front cost as much as compiling its query, measured with
 * bench/micro/call-site-cost.ts, so their errors carry the batch's frames only).
 */
import {
  captureCallSite,
  isWalguardError,
  toUnitError,
  WalguardError,
  withCallerStack,
} from '../errors.js';
import type { StatementResult, WireStatement } from '../queue/protocol.js';
import type { WriteQueue } from '../queue/write-queue.js';
import type { DeferredFailures } from './deferred-failures.js';
import { statementsUnit, type Unit } from './unit.js';
import { callWriteFunction, compileWritables } from './writable.js';

/** A deferred unit's success needs no callback. */
const noop = () => {};

export class UnitIntake {
  /** What `defer()` returns for units dropped at once in this turn of the event loop, and its error: one for all (see `WriteQueue.dropIfFull`). */
  #dropped: { promise: Promise<void>; error: Error } | undefined;
  readonly #queue: WriteQueue;
  /** Throws `CLOSED` when work called at `ticket` (none: now) is no longer accepted. */
  readonly #assertOpen: (ticket?: number) => void;
  readonly #deferredFailures: DeferredFailures;

  constructor(
    queue: WriteQueue,
    assertOpen: (ticket?: number) => void,
    deferredFailures: DeferredFailures,
  ) {
    this.#queue = queue;
    this.#assertOpen = assertOpen;
    this.#deferredFailures = deferredFailures;
  }

  /** Queues statements as one unit; resolves with their results once durable (critical). */
  async submit(
    statements: WireStatement[],
    critical: boolean,
    ticket: number | undefined,
  ): Promise<StatementResult[]> {
    try {
      this.#assertOpen(ticket);
      let unit!: Unit;
      const done = new Promise<StatementResult[]>((resolve, reject) => {
        unit = statementsUnit(statements, critical, ticket, resolve, reject);
      });
      const admitted = this.#queue.add(unit);
      if (admitted !== undefined) await admitted;
      return await done;
    } catch (error) {
      // Captured here, in the continuation the caller awaits: V8 lists the awaiting callers
      // (zero-cost async stack traces), so a unit that succeeds pays nothing.
      throw withCallerStack(error, captureCallSite());
    }
  }

  /** `defer()`: see `Walguard.defer`. Never rejects unhandled. */
  defer(fn: unknown, db: unknown): Promise<void> {
    let statements: WireStatement[];
    const ticket = this.#queue.tickets.take();
    try {
      this.#assertOpen();
      statements = compileWritables(callWriteFunction('defer', fn, db), db, 'defer');
    } catch (error) {
      return this.#failedToQueue(error as Error);
    }
    const failed = (error: Error) => this.#deferredFailures.failed(error);
    const unit = statementsUnit(statements, false, ticket, noop, failed);
    if (this.#queue.dropIfFull(unit)) return this.#droppedAtOnce();
    const admitted = this.#queue.add(unit);
    if (admitted === undefined) return Promise.resolve();
    const queued = admitted.catch((error: Error) => this.#failedToQueue(error));
    // A caller that ignores the promise must never see an unhandled rejection.
    queued.catch(() => {});
    return queued;
  }

  /** A deferred unit the full queue dropped at once: counted, reported (rate-limited), and rejected. */
  #droppedAtOnce(): Promise<void> {
    if (this.#dropped === undefined) {
      const error = new WalguardError(
        'QUEUE_FULL',
        `The write queue is full and ${this.#queue.limits.maxWaitingCallers} callers already wait for room (maxPendingBytes, maxWaitingCallers): the deferred unit was dropped and will not be applied`,
      );
      const promise = Promise.reject(error);
      promise.catch(() => {});
      this.#dropped = { promise, error };
      // A later burst gets an error (and stack) of its own.
      setImmediate(() => {
        this.#dropped = undefined;
      }).unref();
    }
    this.#deferredFailures.dropped(this.#dropped.error);
    return this.#dropped.promise;
  }

  /** A deferred unit that could not be queued: reported, and the returned promise rejects (handled). */
  #failedToQueue(error: Error): Promise<void> {
    const unitError = error instanceof WalguardError ? error : toUnitError(error);
    if (isWalguardError(unitError, 'QUEUE_FULL')) this.#deferredFailures.dropped(unitError);
    else this.#deferredFailures.failed(unitError);
    const p = Promise.reject(unitError);
    p.catch(() => {});
    return p;
  }
}
