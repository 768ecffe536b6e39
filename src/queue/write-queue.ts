/**
 * The write queue: one bounded FIFO of units in front of the single writer.
 *
 * Strategy: group commit without artificial delay. Each batch is everything queued when the
 * writer becomes free, up to `maxBatchUnits` / `maxBatchBytes`. While the writer commits batch
 * k (in its worker thread, waiting on the fsync), the main thread keeps accepting units, so
 * batch k+1 grows by itself; one fsync then acknowledges all of them. `lingerMs` (default 0)
 * can add a wait before a batch starts, for workloads that trickle in. When a batch's reply
 * arrives, the next one either starts at once with what queued meanwhile (a fast disk: keeps
 * the writer busy) or waits until the callers just acknowledged have been settled and had
 * their chance to write again (a slow disk: one fsync for all of them); the measured commit
 * and settle times choose (`#mergeNext`).
 *
 * Invariants:
 * - Submission order: units enter the FIFO in ticket order (the order they were called; see
 *   `submission-order.ts`), a batch is taken one `setImmediate` after it was scheduled so that
 *   every unit called in the current macrotask has arrived, and batches are taken from the
 *   FIFO's head. A caller that had to wait for room blocks everyone behind it, even when a
 *   later, smaller unit would fit.
 * - One batch at a time: batches (and checkpoints and pragmas, through `exclusive()`) run as
 *   tasks of a p-queue with concurrency 1, so the writer never sees two at once.
 * - Bounded memory: at most `maxPendingBytes` bytes wait in the FIFO (each unit counted with
 *   its SQL, parameters and a fixed per-unit overhead, see `tx/unit.ts`), and at most
 *   `maxPendingUnits` units when a critical one arrives, plus one batch in flight; past that
 *   callers wait (at most `maxWaitingCallers` of them, each at most `queueTimeoutMs`) or get
 *   `QUEUE_FULL`. Deferred units are bounded by bytes only: a fire-and-forget burst of small
 *   units (nobody awaits them, so nobody can wait) is admitted whole while it fits, 100k
 *   units of ~100 bytes easily. A single unit larger than the byte bound is admitted when the
 *   FIFO is empty, so it can still run alone.
 * - Deferred units wait at most `deferredFlushMs`; a critical unit flushes every deferred
 *   unit queued before it (they share its batch, or precede it). A batch of deferred units
 *   only is committed without its own fsync (`durable: false`).
 * - Nothing is acknowledged before the writer's reply says its COMMIT returned.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import { fromWireError, WalguardError } from '../errors.js';
import type { Unit } from '../tx/unit.js';
import type { BatchReply } from './protocol.js';
import { QueueStats } from './queue-stats.js';
import { TicketCounter } from './submission-order.js';

/** Limits of the queue (see `WalguardOptions` for meaning and defaults). */
export interface WriteQueueLimits {
  maxBatchUnits: number;
  maxBatchBytes: number;
  maxPendingUnits: number;
  maxPendingBytes: number;
  maxWaitingCallers: number;
  queueTimeoutMs: number;
  lingerMs: number;
  deferredFlushMs: number;
}

/** What the queue needs from the writer. */
export interface BatchRunner {
  /** Runs one batch as one transaction; `durable` is false for a batch of deferred units only. */
  runBatch(units: Unit['wire'][], durable: boolean): Promise<BatchReply>;
}

/** Facts about one committed (or failed) batch, for the `commit` event. */
export interface BatchInfo {
  /** Units in the batch. */
  units: number;
  /** Of those, critical units. */
  critical: number;
  /** Units that succeeded. */
  succeeded: number;
  /** Whether the COMMIT was made with the configured `synchronous` (false: deferred-only batch). */
  durable: boolean;
  /** Time from BEGIN to the end of COMMIT, in ms. */
  commitMs: number;
  /** Set when the whole batch failed. */
  error?: Error;
}

/** Units per turn of the event loop whose promises are settled (see `#enqueueSettlement`). */
const SETTLE_CHUNK = 32;

/** A batch whose units' promises are being settled. */
interface Settlement {
  batch: Unit[];
  /** Per-unit outcomes, or undefined when `error` failed the whole batch. */
  outcomes: BatchReply['outcomes'] | undefined;
  error: Error | undefined;
  /** The next unit to settle. */
  index: number;
}

/** A caller waiting for room. */
interface Waiter {
  unit: Unit;
  admit: () => void;
  fail: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export class WriteQueue {
  readonly #limits: WriteQueueLimits;
  readonly #runner: BatchRunner;
  readonly #onBatch: (info: BatchInfo) => void;
  /** The FIFO; `#head` is the index of its first live element (compacted as it grows). */
  #fifo: Unit[] = [];
  #head = 0;
  /** Bytes of the units in the FIFO. */
  #bytes = 0;
  /** Critical units in the FIFO (a batch starts at once while any is queued). */
  #criticalQueued = 0;
  /** Callers waiting for room, in submission order. */
  readonly #waiters: Waiter[] = [];
  /** Runs batches, checkpoints and pragmas strictly one at a time. */
  readonly #serial = new PQueue({ concurrency: 1 });
  /** True while a batch task is queued in `#serial` and has not yet taken its units. */
  #batchScheduled = false;
  /** Timer that flushes deferred units after `deferredFlushMs`. */
  #deferredTimer: NodeJS.Timeout | undefined;
  /** When set, deferred units are flushed without waiting (closing). */
  #flushAll = false;
  /**
   * The next batch, taken from the FIFO the moment the previous one's reply arrived (see
   * `#takeNextEarly`); the batch task already queued runs it without waiting a turn.
   */
  #nextBatch: Unit[] | undefined;
  /** Units taken by the batch in flight. */
  #inFlight = 0;
  #deferredInFlight = 0;
  /** Counters and latency samples. */
  readonly stats = new QueueStats();
  /** Hands out submission tickets. */
  readonly tickets = new TicketCounter();
  /** Batches whose units' promises are still being settled, in order. */
  readonly #settlements: Settlement[] = [];
  /** True while a `setImmediate` will continue settling. */
  #settleScheduled = false;
  /** BEGIN..COMMIT time of the last batch, ms. */
  #lastCommitMs = 0;
  /** When the last reply arrived, and how long its settlements then took to drain, ms. */
  #replyAt = 0;
  #lastSettleMs = 0;
  /** Batch tasks waiting for the settlements to drain (see `#mergeNext`). */
  #drained: (() => void)[] = [];

  constructor(limits: WriteQueueLimits, runner: BatchRunner, onBatch: (info: BatchInfo) => void) {
    this.#limits = Object.freeze({ ...limits });
    this.#runner = runner;
    this.#onBatch = onBatch;
  }

  /** The queue's limits (frozen). */
  get limits(): Readonly<WriteQueueLimits> {
    return this.#limits;
  }

  /** Units in the FIFO, waiting for room, or in the batch in flight. */
  get pending(): number {
    return (
      this.#fifo.length -
      this.#head +
      this.#waiters.length +
      this.#inFlight +
      (this.#nextBatch?.length ?? 0)
    );
  }

  /** Deferred units not yet applied. */
  get deferredPending(): number {
    let n = this.#deferredInFlight;
    for (const u of this.#nextBatch ?? []) if (!u.critical) n++;
    for (let i = this.#head; i < this.#fifo.length; i++) if (!this.#fifo[i]!.critical) n++;
    for (const w of this.#waiters) if (!w.unit.critical) n++;
    return n;
  }

  /** Bytes of the units in the FIFO. */
  get pendingBytes(): number {
    return this.#bytes;
  }

  /**
   * Queues a unit. Returns `undefined` when it was admitted at once (the hot path allocates
   * nothing), or a promise that settles when it was admitted or turned away (`QUEUE_FULL`).
   */
  add(unit: Unit): Promise<void> | undefined {
    if (unit.ticket === 0) unit.ticket = this.tickets.take();
    if (this.#waiters.length === 0 && this.#hasRoom(unit)) {
      this.#push(unit);
      return undefined;
    }
    if (this.#waiters.length >= this.#limits.maxWaitingCallers) {
      this.#turnedAway(unit);
      return Promise.reject(
        new WalguardError(
          'QUEUE_FULL',
          `The write queue is full and ${this.#waiters.length} callers already wait for room (maxWaitingCallers); the unit was not queued`,
        ),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { unit, admit: resolve, fail: reject, timer: undefined };
      if (Number.isFinite(this.#limits.queueTimeoutMs)) {
        waiter.timer = setTimeout(() => {
          const at = this.#waiters.indexOf(waiter);
          if (at < 0) return;
          this.#waiters.splice(at, 1);
          this.#turnedAway(unit);
          reject(
            new WalguardError(
              'QUEUE_FULL',
              `The write queue stayed full for queueTimeoutMs (${this.#limits.queueTimeoutMs} ms); the unit was not queued`,
            ),
          );
          // Whoever waited behind this caller may fit now.
          this.#admitWaiters();
        }, this.#limits.queueTimeoutMs);
      }
      insertByTicket(this.#waiters, waiter, (w) => w.unit.ticket, 0);
    });
  }

  /**
   * For a deferred unit nobody may be waiting on: when the queue would turn it away at once
   * (`QUEUE_FULL`), counts it as dropped and returns true, without allocating an error or a
   * promise — a synchronous burst of drops must not hold memory per unit until it yields.
   */
  dropIfFull(unit: Unit): boolean {
    if (this.#waiters.length === 0 && this.#hasRoom(unit)) return false;
    if (this.#waiters.length < this.#limits.maxWaitingCallers) return false;
    this.#turnedAway(unit);
    return true;
  }

  /** Rejects every caller still waiting for room (used when the database fails for good). */
  failWaiters(error: Error): void {
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.fail(error);
    }
  }

  /** Runs `task` on the writer between batches (checkpoints, pragmas). */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.#serial.add(task) as Promise<T>;
  }

  /** Flushes deferred units now and resolves when everything queued so far is applied and every unit's promise settled. */
  async drain(): Promise<void> {
    this.#flushAll = true;
    this.#schedule(true);
    while (this.pending > 0 || this.#settlements.length > 0) {
      await this.#serial.onIdle();
      if (this.pending > 0) this.#schedule(true);
      else if (this.#settlements.length > 0) await new Promise<void>((r) => setImmediate(r));
    }
    await this.#serial.onIdle();
  }

  /** Resolves when no batch is queued or running. */
  onIdle(): Promise<void> {
    return this.#serial.onIdle();
  }

  /** Counts a unit turned away with `QUEUE_FULL`. */
  #turnedAway(unit: Unit): void {
    this.stats.queueFull++;
    if (!unit.critical) this.stats.deferredDropped++;
  }

  #hasRoom(unit: Unit): boolean {
    const queued = this.#fifo.length - this.#head;
    if (queued === 0) return true;
    if (unit.critical && queued >= this.#limits.maxPendingUnits) return false;
    return this.#bytes + unit.bytes <= this.#limits.maxPendingBytes;
  }

  #push(unit: Unit): void {
    insertByTicket(this.#fifo, unit, (u) => u.ticket, this.#head);
    this.#bytes += unit.bytes;
    if (unit.critical) {
      this.#criticalQueued++;
      this.#schedule(true);
    } else {
      const queued = this.#fifo.length - this.#head;
      const full =
        queued >= this.#limits.maxBatchUnits || this.#bytes >= this.#limits.maxBatchBytes;
      this.#schedule(full || this.#flushAll || this.#limits.deferredFlushMs === 0);
    }
  }

  /** Makes sure a batch task will run: now, or (deferred units only) after `deferredFlushMs`. */
  #schedule(now: boolean): void {
    if (this.#batchScheduled) return;
    if (!now) {
      if (this.#deferredTimer === undefined) {
        this.#deferredTimer = setTimeout(() => {
          this.#deferredTimer = undefined;
          this.#schedule(true);
        }, this.#limits.deferredFlushMs);
        // Queued deferred units do not keep the process alive by themselves: if the app ends
        // without close(), `beforeExit` closes the database, which flushes them.
        this.#deferredTimer.unref();
      }
      return;
    }
    if (this.#deferredTimer !== undefined) {
      clearTimeout(this.#deferredTimer);
      this.#deferredTimer = undefined;
    }
    this.#batchScheduled = true;
    this.#serial
      .add(() => this.#runOneBatch())
      .catch((error: unknown) => {
        // #runOneBatch settles every unit itself; reaching here is a bug, never a lost ack.
        this.#onBatch({
          units: 0,
          critical: 0,
          succeeded: 0,
          durable: false,
          commitMs: 0,
          error: error as Error,
        });
      });
  }

  /** Takes a batch from the head of the FIFO and has the writer commit it. */
  async #runOneBatch(): Promise<void> {
    let batch = this.#nextBatch;
    this.#nextBatch = undefined;
    if (batch === undefined) {
      // One turn of the event loop, so that units called in this macrotask but still inside
      // Kysely's async executor arrive and take their place by ticket. It also coalesces a
      // burst of same-tick calls into one batch.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.#mergeNext() && this.#settlements.length > 0) {
        await new Promise<void>((resolve) => this.#drained.push(resolve));
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      if (
        this.#limits.lingerMs > 0 &&
        this.#fifo.length - this.#head < this.#limits.maxBatchUnits
      ) {
        await sleep(this.#limits.lingerMs);
      }
      batch = this.#take();
    }
    this.#batchScheduled = false;
    if (batch.length === 0) return;
    this.#admitWaiters();
    // Whatever remains (or arrives while this batch commits) gets the next task.
    if (this.#fifo.length > this.#head) this.#schedule(this.#criticalQueued > 0 || this.#flushAll);

    let critical = 0;
    for (const unit of batch) if (unit.critical) critical++;
    const durable = critical > 0;
    this.#inFlight = batch.length;
    this.#deferredInFlight = batch.length - critical;
    let reply: BatchReply;
    try {
      reply = await this.#runner.runBatch(
        batch.map((u) => u.wire),
        durable,
      );
    } catch (error) {
      // The worker is gone: nothing of this batch is known to be durable.
      this.#settleFailed(batch, error as Error, durable, critical);
      return;
    } finally {
      this.#inFlight = 0;
      this.#deferredInFlight = 0;
    }
    this.#lastCommitMs = reply.commitMs;
    this.#replyAt = performance.now();
    this.#takeNextEarly();
    if (reply.error !== undefined && !reply.committed) {
      this.#settleFailed(batch, fromWireError(reply.error), durable, critical, reply.commitMs);
      return;
    }
    this.#settle(batch, reply, durable, critical);
  }

  /**
   * Whether the next batch should wait until the last one's callers have all been settled
   * (and so had their chance to submit again) instead of starting at once.
   *
   * With N callers that each await their write, starting at once (pipelining) splits them
   * into two groups that alternate batches: the writer never idles, but each commit carries
   * N/2. Waiting merges them: one commit carries N, and the writer idles while the main
   * thread settles. Waiting wins when a commit costs more than settling, i.e. on a slow
   * fsync: measured on a 5 ms-fsync disk with 256 callers, 20-23k rows/s merged against
   * 16-17k pipelined, with the same event-loop delay. On a fast disk a commit is shorter
   * than settling and pipelining keeps the writer busy. Both times are measured, so the
   * choice follows the disk (and the app's own work per write).
   */
  #mergeNext(): boolean {
    return this.#lastCommitMs > this.#lastSettleMs;
  }

  /**
   * On a reply, takes the next batch at once, before any of this batch's promises settle,
   * so that the writer starts it a few microtasks later instead of idling while the main
   * thread settles callers and waits a turn (measured: ~1-2 ms per batch at 256 callers,
   * a third of the writer's time on a 5 ms-fsync disk).
   *
   * Submission order holds: the reply is a macrotask of its own and no app code has run in
   * it yet, so every unit called before it has reached the FIFO (Kysely's hops are
   * microtasks of earlier macrotasks), and units called from here on get later tickets.
   * Only when critical units wait (deferred ones keep their flush delay), no `lingerMs`
   * applies, and the batch task that will run it is already queued.
   */
  #takeNextEarly(): void {
    if (
      this.#mergeNext() ||
      !this.#batchScheduled ||
      this.#nextBatch !== undefined ||
      this.#limits.lingerMs > 0 ||
      !(this.#criticalQueued > 0 || this.#flushAll)
    ) {
      return;
    }
    const batch = this.#take();
    if (batch.length > 0) this.#nextBatch = batch;
    this.#admitWaiters();
  }

  /** Removes the next batch from the FIFO's head. */
  #take(): Unit[] {
    const { maxBatchUnits, maxBatchBytes } = this.#limits;
    const batch: Unit[] = [];
    let bytes = 0;
    while (this.#head < this.#fifo.length && batch.length < maxBatchUnits) {
      const unit = this.#fifo[this.#head]!;
      if (batch.length > 0 && bytes + unit.bytes > maxBatchBytes) break;
      batch.push(unit);
      bytes += unit.bytes;
      this.#fifo[this.#head] = undefined as unknown as Unit;
      this.#head++;
      if (unit.critical) this.#criticalQueued--;
    }
    this.#bytes -= bytes;
    if (this.#head === this.#fifo.length) {
      this.#fifo = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#fifo.length) {
      this.#fifo = this.#fifo.slice(this.#head);
      this.#head = 0;
    }
    return batch;
  }

  /** Admits waiting callers, in order, while there is room. */
  #admitWaiters(): void {
    while (this.#waiters.length > 0 && this.#hasRoom(this.#waiters[0]!.unit)) {
      const waiter = this.#waiters.shift()!;
      clearTimeout(waiter.timer);
      this.#push(waiter.unit);
      waiter.admit();
    }
  }

  #settle(batch: Unit[], reply: BatchReply, durable: boolean, critical: number): void {
    const now = performance.now();
    const s = this.stats;
    s.commits++;
    if (!durable) s.relaxedCommits++;
    s.commitLatency.add(reply.commitMs);
    s.addBatchSize(batch.length);
    if (batch.length > s.maxBatchUnits) s.maxBatchUnits = batch.length;
    let succeeded = 0;
    for (let i = 0; i < batch.length; i++) {
      const unit = batch[i]!;
      const outcome = reply.outcomes[i]!;
      if (!unit.critical) s.deferredUnits++;
      if (outcome.ok) {
        succeeded++;
        s.units++;
        if (unit.critical) s.ackLatency.add(now - unit.submittedAt);
      } else {
        s.failedUnits++;
        if (!unit.critical) s.deferredErrors++;
      }
    }
    this.#enqueueSettlement({ batch, outcomes: reply.outcomes, error: undefined, index: 0 });
    // A batch that failed after committing its first units (see `Writer`): those stand.
    const error = reply.error === undefined ? undefined : fromWireError(reply.error);
    if (error !== undefined) s.failedBatches++;
    const info: BatchInfo = {
      units: batch.length,
      critical,
      succeeded,
      durable,
      commitMs: reply.commitMs,
    };
    if (error !== undefined) info.error = error;
    this.#onBatch(info);
  }

  /**
   * Settles units' promises in order, at most `SETTLE_CHUNK` per turn of the event loop.
   * Resolving a whole batch at once runs every caller's continuation back to back (256
   * callers: ~7 ms of app code in one macrotask, the event-loop delay the benchmark saw),
   * and those continuations all submit their next unit in the same macrotask, so the writer
   * idles while the main thread works and vice versa. In chunks, timers and I/O run between
   * them, and the first callers' next units form a batch that commits while later chunks
   * are still settled.
   */
  #enqueueSettlement(entry: Settlement): void {
    this.#settlements.push(entry);
    if (this.#settleScheduled) return;
    if (this.#nextBatch === undefined) {
      this.#drainSettlements();
    } else {
      // Let the early-taken batch reach the writer first (its task starts in a microtask).
      this.#settleScheduled = true;
      setImmediate(() => this.#drainSettlements());
    }
  }

  #drainSettlements(): void {
    this.#settleScheduled = false;
    let budget = SETTLE_CHUNK;
    while (budget > 0 && this.#settlements.length > 0) {
      const entry = this.#settlements[0]!;
      while (budget > 0 && entry.index < entry.batch.length) {
        const i = entry.index++;
        const unit = entry.batch[i]!;
        budget--;
        if (entry.error !== undefined) {
          unit.reject(entry.error);
          continue;
        }
        const outcome = entry.outcomes![i]!;
        if (outcome.ok) unit.resolve(outcome.results);
        else unit.reject(fromWireError(outcome.error));
      }
      if (entry.index === entry.batch.length) this.#settlements.shift();
    }
    if (this.#settlements.length === 0) {
      this.#lastSettleMs = performance.now() - this.#replyAt;
      for (const resolve of this.#drained.splice(0)) resolve();
    }
    if (this.#settlements.length > 0) {
      this.#settleScheduled = true;
      setImmediate(() => this.#drainSettlements());
    }
  }

  #settleFailed(
    batch: Unit[],
    error: Error,
    durable: boolean,
    critical: number,
    commitMs = 0,
  ): void {
    const s = this.stats;
    s.failedBatches++;
    s.failedUnits += batch.length;
    for (const unit of batch) if (!unit.critical) s.deferredErrors++;
    this.#enqueueSettlement({ batch, outcomes: undefined, error, index: 0 });
    this.#onBatch({ units: batch.length, critical, succeeded: 0, durable, commitMs, error });
  }
}

/** Inserts `item` into `list` (from index `from`) keeping it ordered by `key`; O(1) for in-order arrivals. */
function insertByTicket<T>(list: T[], item: T, key: (x: T) => number, from: number): void {
  const k = key(item);
  let at = list.length;
  while (at > from && key(list[at - 1]!) > k) at--;
  if (at === list.length) list.push(item);
  else list.splice(at, 0, item);
}
