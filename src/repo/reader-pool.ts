/**
 * The reader threads: a pool of `worker_threads`, each with its own read connection
 * (`reader-worker.ts`), so that a read that takes a while never blocks the main thread.
 *
 * Dispatch. Reads wait in one FIFO queue on the main thread (its length is `stats().reads
 * .queueDepth`). A thread with nothing in flight takes the head of the queue, plus the reads
 * behind it while their measured costs add up to at most `BATCH_COST_MS` (and at most
 * `MAX_BATCH` reads), in one message; a read of unknown or large cost travels alone, so that
 * it never holds cheap reads back. While a thread works, reads gather behind it and leave in
 * the next message: one round trip per batch, not per read, when many callers read at once
 * (256 callers' point reads: 60 µs per read one by one, 18 µs batched by 64, measured here).
 *
 * Streams stay on the thread that opened them (their statement holds a connection there);
 * their chunk requests go to that thread.
 *
 * Messages leave in the event loop's check phase (`setImmediate`), never straight from the
 * code that asked. Node's worker port handles every message that arrives while it is
 * handling one (up to 1,000 per wakeup) before the loop moves on: when a thread answers
 * faster than the main thread's continuation takes to ask again (a point read: 20 µs on the
 * thread, Kysely's 30-50 µs here), an awaited chain of reads sent at once can keep the loop
 * in one poll phase for hundreds of round trips (an echo worker and a 50 µs continuation,
 * measured on the loaded 2-core machine: timers held off for 17-36 ms, against 3 ms sent
 * from the check phase). Sent from the check phase, each round trip ends the loop's turn,
 * and everything asked for during a turn leaves in one batch.
 *
 * Lifetime. Threads are unref'ed while idle, so an app that forgets `close()` still exits.
 * A thread that dies (an exit, an out-of-memory error) fails the reads it held with
 * `IO_ERROR` and is replaced. `close()` lets every read in flight or queued finish, then
 * ends the streams still open and closes every thread's connections.
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { SettingsReadBack } from '../durability/connection-settings.js';
import { fromWireError, WalguardError } from '../errors.js';
import type { StatementResult } from '../queue/protocol.js';
import { firstMessage, spawnWorker } from '../spawn-worker.js';
import type {
  ReaderInit,
  ReaderReady,
  ReaderReply,
  ReaderRequest,
  ReadMode,
  WireRead,
  WireReadResult,
} from './reader-protocol.js';
import { fromWireRows } from './wire-rows.js';

/** Most reads in one message to a thread. */
const MAX_BATCH = 64;
/**
 * Batches per thread the queue may hold before the router stops sending cheap reads here
 * (they wait for the next turn on the main thread instead).
 */
const ROOM_BATCHES = 4;
/** Most estimated cost of the reads in one message, in ms: bounds how long a read waits behind others of its batch. */
const BATCH_COST_MS = 2;

/** A read's answer from a thread. */
export interface PoolReply {
  /** Its rows, unless it must go to the writer. */
  result?: StatementResult;
  /** Set when the statement writes (a `try` read). */
  mustWrite?: true;
  /** Time it took on the thread, in ms. */
  ms: number;
}

/** The reply to a stream request. */
type ChunkReply = Extract<ReaderReply, { type: 'chunk' }>;

/** A request in flight to one thread: a read of a batch, or a stream chunk. */
interface Pending {
  resolve(reply: WireReadResult & ChunkReply): void;
  reject(error: Error): void;
}

/** A read waiting for, or on, a thread. */
interface QueuedRead extends Pending {
  read: WireRead;
  /** Estimated cost in ms (Infinity: unknown). */
  costMs: number;
}

/** One reader thread. */
class ReaderThread {
  readonly worker: Worker;
  readonly settings: SettingsReadBack;
  /** Requests sent and not answered yet, by id (each read of a batch has its own). */
  readonly pending = new Map<number, Pending>();
  /** Messages sent that expect a reply and have not had it. Guards `idle`. */
  inFlight = 0;
  /** Streams open on this thread. */
  streams = 0;
  /** Stream requests waiting for the check phase. */
  readonly outbox: ReaderRequest[] = [];
  /** Set once the thread is gone. */
  dead = false;

  constructor(worker: Worker, settings: SettingsReadBack) {
    this.worker = worker;
    this.settings = settings;
  }

  /** Sends a request that expects one reply; refs the thread while any is awaited. */
  send(request: ReaderRequest): void {
    if (this.inFlight++ === 0) this.worker.ref();
    this.worker.postMessage(request);
  }

  /** Counts one reply. */
  answered(): void {
    if (--this.inFlight === 0) this.worker.unref();
  }
}

export class ReaderPool {
  readonly #init: ReaderInit;
  readonly #logger: Logger;
  readonly #threads: ReaderThread[] = [];
  /** Reads waiting for a thread, oldest first, from `#head` on. */
  #queue: QueuedRead[] = [];
  #head = 0;
  #nextId = 1;
  /** Set while a `#pump` waits for the check phase. */
  #pumpScheduled = false;
  readonly #runPump = () => {
    this.#pumpScheduled = false;
    this.#pump();
  };
  /** Set by `close()`; new requests fail with `CLOSED`. */
  #closing: Promise<void> | undefined;
  /** Resolves `close()`'s wait once nothing is queued or in flight. */
  #onDrained: (() => void) | undefined;
  /** Threads being started to replace dead ones. */
  #replacing = 0;
  /** Most reads queued at once since open. */
  maxQueueDepth = 0;
  /** Streams opened since open. */
  streamsOpened = 0;

  private constructor(init: ReaderInit, logger: Logger) {
    this.#init = init;
    this.#logger = logger;
  }

  /**
   * Starts `threads` reader threads at once and waits until each has its connection open
   * and every setting read back; fails (closing the others) when any cannot. The threads
   * load their code at once but open their connections only once `openWhen` resolves true
   * (the writer has put the file in WAL mode); when it resolves false they exit.
   */
  static async start(
    init: ReaderInit,
    threads: number,
    logger: Logger,
    openWhen: Promise<boolean> = Promise.resolve(true),
  ): Promise<ReaderPool> {
    const pool = new ReaderPool(init, logger);
    const started = await Promise.allSettled(
      Array.from({ length: threads }, () => pool.#startThread(openWhen)),
    );
    const failed = started.find((s) => s.status === 'rejected');
    for (const s of started) if (s.status === 'fulfilled') pool.#threads.push(s.value);
    if (failed !== undefined) {
      await pool.close();
      throw (failed as PromiseRejectedResult).reason;
    }
    return pool;
  }

  async #startThread(openWhen: Promise<boolean>): Promise<ReaderThread> {
    const worker = spawnWorker('reader-worker', import.meta.url, this.#init);
    const ready = firstMessage<ReaderReady>(worker);
    ready.catch(() => {});
    if (!(await openWhen)) {
      await worker.terminate();
      throw closedError();
    }
    worker.postMessage({ op: 'open' } satisfies ReaderRequest);
    const opened = await ready;
    if (opened.type === 'open-failed') {
      await worker.terminate();
      throw fromWireError(opened.error);
    }
    const thread = new ReaderThread(worker, opened.settings);
    worker.on('message', (message: ReaderReply) => this.#onReply(thread, message));
    worker.on('error', (error) => this.#onDeath(thread, error));
    worker.on('exit', (code) => this.#onDeath(thread, new Error(`exited with code ${code}`)));
    worker.unref();
    return thread;
  }

  /** The settings as read back from each thread's connection at start. */
  get settings(): SettingsReadBack[] {
    return this.#threads.map((t) => t.settings);
  }

  /** @internal The threads' workers, for tests that need one to die. */
  get workers(): Worker[] {
    return this.#threads.map((t) => t.worker);
  }

  /** Threads alive now. */
  get threads(): number {
    return this.#threads.length;
  }

  /** Reads waiting for a thread now. */
  get queueDepth(): number {
    return this.#queue.length - this.#head;
  }

  /** Runs a read on a thread; `costMs` is its estimated cost (Infinity: unknown). */
  read(
    mode: ReadMode,
    sql: string,
    params: readonly unknown[],
    costMs: number,
  ): Promise<PoolReply> {
    return new Promise<WireReadResult>((resolve, reject) => {
      if (this.#closing !== undefined) {
        reject(closedError());
        return;
      }
      if (this.#threads.length === 0 && this.#replacing === 0) {
        reject(deadError());
        return;
      }
      this.#queue.push({
        read: { id: this.#nextId++, mode, sql, params },
        costMs,
        resolve,
        reject,
      });
      const depth = this.queueDepth;
      if (depth > this.maxQueueDepth) this.maxQueueDepth = depth;
      this.#schedulePump();
    }).then(decodeRead);
  }

  /** Runs a PRAGMA or check on a thread; its rows as arrays. */
  async rawRows(sql: string): Promise<unknown[][]> {
    const reply = await new Promise<WireReadResult>((resolve, reject) => {
      if (this.#closing !== undefined) return reject(closedError());
      if (this.#threads.length === 0 && this.#replacing === 0) return reject(deadError());
      const read: WireRead = { id: this.#nextId++, mode: 'raw', sql, params: [] };
      this.#queue.push({ read, costMs: Number.POSITIVE_INFINITY, resolve, reject });
      this.#schedulePump();
    });
    if (reply.error !== undefined) throw fromWireError(reply.error);
    return reply.rows?.values ?? [];
  }

  /** Streams a read's rows from a thread, `chunkSize` rows at a time, on a connection of its own. */
  async *stream(
    sql: string,
    params: readonly unknown[],
    chunkSize: number,
  ): AsyncGenerator<StatementResult> {
    if (this.#closing !== undefined) throw closedError();
    const thread = this.#leastBusy();
    const streamId = this.#nextId++;
    this.streamsOpened++;
    thread.streams++;
    let done = false;
    try {
      let reply = await this.#chunk(thread, (id) => ({
        op: 'stream-open',
        id,
        streamId,
        sql,
        params,
        chunkSize,
      }));
      for (;;) {
        done = reply.done;
        if (reply.error !== undefined) throw fromWireError(reply.error);
        if (reply.rows !== undefined && reply.rows.values.length > 0) {
          yield { rows: fromWireRows(reply.rows) };
        }
        if (reply.done) return;
        if (this.#closing !== undefined) throw closedError();
        reply = await this.#chunk(thread, (id) => ({ op: 'stream-next', id, streamId }));
      }
    } finally {
      thread.streams--;
      if (!done && !thread.dead) thread.worker.postMessage({ op: 'stream-close', streamId });
    }
  }

  /** Sends one stream request to `thread` and waits for its chunk. */
  #chunk(thread: ReaderThread, build: (id: number) => ReaderRequest): Promise<ChunkReply> {
    if (thread.dead) return Promise.reject(deadError());
    const id = this.#nextId++;
    return new Promise<ChunkReply>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.outbox.push(build(id));
      this.#schedulePump();
    });
  }

  /** The live thread with the fewest streams and requests in flight. */
  #leastBusy(): ReaderThread {
    let best = this.#threads[0];
    if (best === undefined) throw deadError();
    for (const t of this.#threads) {
      if (t.streams + t.inFlight < best.streams + best.inFlight) best = t;
    }
    return best;
  }

  /** True while fewer reads wait than the threads take in `ROOM_BATCHES` batches each. */
  get hasRoom(): boolean {
    return this.queueDepth < this.#threads.length * MAX_BATCH * ROOM_BATCHES;
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(this.#runPump);
  }

  /** Sends the stream requests, and hands queued reads to idle threads. */
  #pump(): void {
    for (const thread of this.#threads) {
      for (const request of thread.outbox.splice(0)) thread.send(request);
      if (this.#head === this.#queue.length) continue;
      if (thread.inFlight > 0) continue;
      const batch: WireRead[] = [];
      let cost = 0;
      while (this.#head < this.#queue.length && batch.length < MAX_BATCH) {
        const next = this.#queue[this.#head]!;
        if (batch.length > 0 && cost + next.costMs > BATCH_COST_MS) break;
        this.#head++;
        cost += next.costMs;
        batch.push(next.read);
        thread.pending.set(next.read.id, next);
      }
      thread.send({ op: 'reads', reads: batch });
    }
    if (this.#head === this.#queue.length && this.#head > 0) {
      this.#queue = [];
      this.#head = 0;
    }
    this.#checkDrained();
  }

  #onReply(thread: ReaderThread, message: ReaderReply): void {
    switch (message.type) {
      case 'reads':
        thread.answered();
        for (const result of message.results) {
          const pending = thread.pending.get(result.id);
          thread.pending.delete(result.id);
          pending?.resolve(result as WireReadResult & ChunkReply);
        }
        this.#afterReply();
        return;
      case 'chunk': {
        thread.answered();
        const pending = thread.pending.get(message.id);
        thread.pending.delete(message.id);
        pending?.resolve(message as WireReadResult & ChunkReply);
        this.#afterReply();
        return;
      }
      case 'closed':
        return;
    }
  }

  /** A thread has room again: queued work leaves in the check phase; a close may be waiting. */
  #afterReply(): void {
    if (this.#head < this.#queue.length) this.#schedulePump();
    this.#checkDrained();
  }

  /** A thread is gone: its requests fail, and (unless closing) a new thread takes its place. */
  #onDeath(thread: ReaderThread, cause: Error): void {
    if (thread.dead) return;
    thread.dead = true;
    const index = this.#threads.indexOf(thread);
    if (index >= 0) this.#threads.splice(index, 1);
    if (this.#closing !== undefined) {
      this.#checkDrained();
      return;
    }
    this.#logger.error({ err: cause }, 'a reader thread failed; starting another');
    const error = new WalguardError('IO_ERROR', `A reader thread failed: ${cause.message}`, {
      cause,
    });
    for (const pending of thread.pending.values()) pending.reject(error);
    thread.pending.clear();
    thread.outbox.length = 0;
    this.#replacing++;
    this.#startThread(Promise.resolve(true)).then(
      (fresh) => {
        this.#replacing--;
        if (this.#closing !== undefined) {
          fresh.worker.terminate().catch(() => {});
          return;
        }
        this.#threads.push(fresh);
        this.#schedulePump();
      },
      (failure: Error) => {
        this.#replacing--;
        this.#logger.error({ err: failure }, 'a new reader thread could not start');
        if (this.#threads.length === 0) this.#failQueued(error);
      },
    );
  }

  /** Fails every queued read (no thread is left to run them). */
  #failQueued(error: Error): void {
    const queued = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    for (const q of queued) q.reject(error);
    this.#checkDrained();
  }

  #checkDrained(): void {
    if (this.#onDrained === undefined) return;
    if (this.#head < this.#queue.length) return;
    if (this.#threads.some((t) => t.inFlight > 0 || t.outbox.length > 0)) return;
    const done = this.#onDrained;
    this.#onDrained = undefined;
    done();
  }

  /**
   * Lets every queued and in-flight read finish, then ends open streams (their next chunk
   * fails with `CLOSED`) and closes every thread. Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await new Promise<void>((resolve) => {
        this.#onDrained = resolve;
        this.#checkDrained();
      });
      await Promise.all(this.#threads.splice(0).map((t) => closeThread(t)));
    })();
    return this.#closing;
  }
}

/** Closes a thread's connections and waits for it to exit. */
async function closeThread(thread: ReaderThread): Promise<void> {
  if (thread.dead) return;
  thread.dead = true;
  const exited = new Promise((resolve) => thread.worker.once('exit', resolve));
  thread.worker.ref();
  thread.worker.postMessage({ op: 'close' } satisfies ReaderRequest);
  await exited;
}

function decodeRead(reply: WireReadResult): PoolReply {
  if (reply.error !== undefined) throw fromWireError(reply.error);
  if (reply.mustWrite) return { mustWrite: true, ms: reply.ms };
  return {
    result: { rows: reply.rows === undefined ? [] : fromWireRows(reply.rows) },
    ms: reply.ms,
  };
}

function closedError(): WalguardError {
  return new WalguardError('CLOSED', 'The database is closed; the read did not run');
}

function deadError(): WalguardError {
  return new WalguardError('IO_ERROR', 'No reader thread is running');
}
