/**
 * Where each read runs: on the main thread's `Reader`, or on a reader thread (`ReaderPool`).
 *
 * The rule, by measurement. A point read by primary key costs ~20 µs on the main thread; the
 * round trip to a reader thread costs ~60 µs more (measured here). So reads that are cheap
 * stay on the main thread, and reads that are not move to the threads, where they block
 * nothing. What is cheap is measured, per SQL text (Kysely compiles one query shape to one
 * text):
 *
 * - A text seen for the first time runs on a reader thread: its cost is unknown, and an
 *   unknown read must not be able to freeze the process.
 * - Each run records the statement's own time (on the thread: without the hop). The estimate
 *   is a decaying maximum: a slower run raises it at once, each faster run lowers it — by
 *   10% while it is above `NOISE_MS`, by half below. A text runs on the main thread while
 *   its estimate is at most `mainThreadMaxUs`. So a slow run (a large result, an unlucky
 *   parameter: 50 ms) sends the text back to the threads for ~40 runs, a text that is slow
 *   every time never returns, and the noise of a first run (a cold thread's JIT, preparing
 *   the statement: 0.5-2 ms here) is forgotten within three runs.
 * - A main-thread turn has a budget. Main-thread reads are synchronous, and an awaited chain
 *   of them never lets the event loop turn (each `await` is a microtask). So once reads
 *   have held the current turn for `turnBudgetUs`, the next cheap read goes to a reader
 *   thread while the threads have room (its reply comes in a later turn: see `ReaderPool`),
 *   or else waits for the end of the turn (`setImmediate`) and runs then. Either way timers
 *   and I/O run, and the budget starts again with the next turn. Under many concurrent
 *   callers the threads take the share of cheap reads the main thread has no time for.
 * - Streams always run on a reader thread (a stream holds its statement, and with it a
 *   snapshot, between chunks); so do queries built with `readOnReaderThread` (vector
 *   searches, exports).
 *
 * Reads inside interactive transactions never come here: they run on the writer, where they
 * see their own writes (`WalguardConnection`).
 */
import { performance } from 'node:perf_hooks';
import { type RawBuilder, sql } from 'kysely';
import { WalguardError } from '../errors.js';
import type { StatementResult } from '../queue/protocol.js';
import { LatencyWindow } from '../queue/queue-stats.js';
import { invalidTextReport } from '../queue/text-guard.js';
import type { ReadStats } from '../stats.js';
import type { ReadPort } from './query-backend.js';
import { MUST_WRITE, type Reader } from './reader.js';
import type { ReaderPool } from './reader-pool.js';
import type { ReadMode } from './reader-protocol.js';

/**
 * The SQL comment that sends a read to a reader thread whatever its measured cost. Put it
 * in a query with `readOnReaderThread` (Kysely's `modifyEnd`) or at the end of raw SQL.
 */
export const READER_THREAD_HINT = '/* walguard: reader thread */';

/**
 * Sends a select to a reader thread whatever its measured cost: pass it to Kysely's
 * `modifyEnd`, as in `db.kysely.selectFrom('messages').selectAll().modifyEnd(readOnReaderThread)`.
 * For reads known to be heavy (searches, exports, reports), so that even their first run
 * and their cheap runs leave the main thread alone.
 */
export const readOnReaderThread: RawBuilder<unknown> = sql.raw(READER_THREAD_HINT);

/** How fast a cost estimate above `NOISE_MS` falls per run that was cheaper: ×0.9. */
const SLOW_DECAY = 0.9;
/** How fast it falls below: ×0.5. */
const NOISE_DECAY = 0.5;
/** Costs up to this are what a cold first run or a GC pause adds, in ms. */
const NOISE_MS = 2;
/** Most SQL texts whose cost is remembered; the oldest is forgotten past it. */
const MAX_TRACKED = 4096;

/** What the router knows of one SQL text. */
interface StatementCost {
  /** Decaying maximum of its measured run time, in ms; Infinity until first measured. */
  estimateMs: number;
  /** Always on a reader thread (`READER_THREAD_HINT`). */
  pinned: boolean;
  /** SQLite said it writes: a `tryQuery` goes straight to the writer. */
  writes: boolean;
}

/** The routing thresholds (see `ReaderOptions`). */
export interface RoutingOptions {
  /** A read whose estimate is at most this runs on the main thread, in µs (Infinity: every read). */
  mainThreadMaxUs: number;
  /** Time reads may hold one event-loop turn before the next goes to a thread, in µs. */
  turnBudgetUs: number;
}

export class ReadRouter implements ReadPort {
  /** The main thread's reader (cheap reads, the integrity check at open, migrations' probe). */
  readonly main: Reader;
  readonly #pool: ReaderPool;
  readonly #maxMs: number;
  readonly #budgetMs: number;
  /** Unknown texts run on the main thread only when every read does. */
  readonly #unknownMs: number;
  readonly #costs = new Map<string, StatementCost>();
  /** When main-thread reads started holding the current turn (-1: they have not). */
  #turnStart = -1;
  readonly #endTurn = () => {
    this.#turnStart = -1;
  };
  /** Reads waiting for the end of the turn (see `#afterTurn`). */
  #waiting: (() => void)[] = [];
  readonly #release = () => {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resume of waiting) resume();
  };
  #closing: Promise<void> | undefined;
  /** Reads run on the main thread. */
  #mainReads = 0;
  /** Reads run on a reader thread. */
  #poolReads = 0;
  /** Of those, cheap reads sent there because the turn's budget was spent. */
  #overflowed = 0;
  /** Reads run on the writer, inside interactive transactions. */
  #writerReads = 0;
  readonly #mainLatency = new LatencyWindow();
  readonly #poolLatency = new LatencyWindow();

  constructor(main: Reader, pool: ReaderPool, options: RoutingOptions) {
    this.main = main;
    this.#pool = pool;
    this.#maxMs = options.mainThreadMaxUs / 1000;
    this.#budgetMs = options.turnBudgetUs / 1000;
    this.#unknownMs = this.#maxMs === Number.POSITIVE_INFINITY ? 0 : Number.POSITIVE_INFINITY;
  }

  query(sql: string, params: readonly unknown[]): StatementResult | Promise<StatementResult> {
    this.#assertOpen();
    return this.#route('query', sql, params);
  }

  tryQuery(sql: string, params: readonly unknown[]): StatementResult | Promise<StatementResult> {
    this.#assertOpen();
    return this.#route('try', sql, params);
  }

  stream(
    sql: string,
    params: readonly unknown[],
    chunkSize: number,
  ): AsyncIterable<StatementResult> {
    this.#assertOpen();
    return this.#pool.stream(sql, params, chunkSize);
  }

  /** Counts a read that ran on the writer (inside an interactive transaction). */
  ranOnWriter(): void {
    this.#writerReads++;
  }

  /** Runs a PRAGMA or check (`check()`) on a reader thread. */
  rawRows(sql: string): Promise<unknown[][]> {
    this.#assertOpen();
    return this.#pool.rawRows(sql);
  }

  /** One message per column holding TEXT that is not UTF-8 (`check('full')`), on reader threads. */
  invalidText(): Promise<string[]> {
    this.#assertOpen();
    return invalidTextReport((sql) => this.#pool.rawRows(sql));
  }

  #route(
    mode: ReadMode,
    sql: string,
    params: readonly unknown[],
  ): StatementResult | Promise<StatementResult> {
    const cost = this.#costOf(sql);
    if (mode === 'try' && cost.writes) throw MUST_WRITE;
    if (cost.estimateMs <= this.#maxMs && !cost.pinned) {
      const now = performance.now();
      if (this.#turnStart < 0) {
        this.#turnStart = now;
        setImmediate(this.#endTurn);
      }
      if (now - this.#turnStart <= this.#budgetMs) {
        return this.#runMain(mode, sql, params, cost, now);
      }
      this.#overflowed++;
      if (!this.#pool.hasRoom) return this.#afterTurn(mode, sql, params);
    }
    return this.#runPool(mode, sql, params, cost);
  }

  /** Routes the read again once the event loop has turned (the budget then starts afresh). */
  async #afterTurn(
    mode: ReadMode,
    sql: string,
    params: readonly unknown[],
  ): Promise<StatementResult> {
    await new Promise<void>((resolve) => {
      this.#waiting.push(resolve);
      if (this.#waiting.length === 1) setImmediate(this.#release);
    });
    return this.#route(mode, sql, params);
  }

  #runMain(
    mode: ReadMode,
    sql: string,
    params: readonly unknown[],
    cost: StatementCost,
    started: number,
  ): StatementResult {
    try {
      const result =
        mode === 'try' ? this.main.tryQuery(sql, params) : this.main.query(sql, params);
      this.#mainReads++;
      return result;
    } catch (error) {
      if (error === MUST_WRITE) cost.writes = true;
      throw error;
    } finally {
      const ms = performance.now() - started;
      observe(cost, ms);
      this.#mainLatency.add(ms);
    }
  }

  async #runPool(
    mode: ReadMode,
    sql: string,
    params: readonly unknown[],
    cost: StatementCost,
  ): Promise<StatementResult> {
    const started = performance.now();
    const reply = await this.#pool.read(
      mode,
      sql,
      params,
      cost.pinned ? Number.POSITIVE_INFINITY : cost.estimateMs,
    );
    this.#poolLatency.add(performance.now() - started);
    observe(cost, reply.ms);
    if (reply.mustWrite) {
      cost.writes = true;
      throw MUST_WRITE;
    }
    this.#poolReads++;
    return reply.result!;
  }

  #costOf(sql: string): StatementCost {
    let cost = this.#costs.get(sql);
    if (cost === undefined) {
      if (this.#costs.size >= MAX_TRACKED) {
        this.#costs.delete(this.#costs.keys().next().value as string);
      }
      // mainThreadMaxUs: Infinity means every read on the main thread, hinted ones too.
      const pinned = this.#unknownMs > 0 && sql.includes(READER_THREAD_HINT);
      cost = { estimateMs: this.#unknownMs, pinned, writes: false };
      this.#costs.set(sql, cost);
    }
    return cost;
  }

  #assertOpen(): void {
    if (this.#closing !== undefined) {
      throw new WalguardError('CLOSED', 'The database is closed; the read did not run');
    }
  }

  /** The read counters, as `stats().reads` reports them. */
  stats(): ReadStats {
    let pooledStatements = 0;
    for (const cost of this.#costs.values()) {
      if (cost.pinned || cost.estimateMs > this.#maxMs) pooledStatements++;
    }
    return {
      main: this.#mainReads,
      pool: this.#poolReads,
      overflowed: this.#overflowed,
      writer: this.#writerReads,
      streams: this.#pool.streamsOpened,
      threads: this.#pool.threads,
      queueDepth: this.#pool.queueDepth,
      maxQueueDepth: this.#pool.maxQueueDepth,
      trackedStatements: this.#costs.size,
      pooledStatements,
      mainLatencyMs: this.#mainLatency.summary(),
      poolLatencyMs: this.#poolLatency.summary(),
    };
  }

  /**
   * Stops taking reads, lets every read already taken finish (those waiting for the end of a
   * turn, and those queued or running on the threads), then closes the threads and the main
   * thread's reader. Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Reads taken before close() and waiting for the end of a turn run (or reach the
      // threads' queue, which the pool drains) first.
      while (this.#waiting.length > 0) await new Promise((resolve) => setImmediate(resolve));
      await this.#pool.close();
    })().finally(() => this.main.close());
    return this.#closing;
  }
}

/** Records one run of `cost`'s statement: a decaying maximum. */
function observe(cost: StatementCost, ms: number): void {
  const estimate = cost.estimateMs;
  const decayed = estimate * (estimate > NOISE_MS ? SLOW_DECAY : NOISE_DECAY);
  cost.estimateMs = decayed > ms && Number.isFinite(decayed) ? decayed : ms;
}
