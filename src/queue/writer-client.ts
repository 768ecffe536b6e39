/**
 * The main thread's handle on the writer worker: starts it, sends requests, matches replies,
 * and turns transaction notifications into callbacks.
 *
 * If the worker dies (a native crash, an exit), every request in flight is rejected with
 * `IO_ERROR` and so is every later one: a unit is never reported durable without a reply
 * from the worker saying its COMMIT returned.
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { SettingsReadBack } from '../durability/connection-settings.js';
import { fromWireError, WalguardError } from '../errors.js';
import { firstMessage, spawnWorker } from '../spawn-worker.js';
import type {
  BatchReply,
  CheckpointMode,
  CheckpointResult,
  StatementResult,
  WireBatchReply,
  WireStatement,
  WireUnit,
  WorkerInit,
  WorkerMessage,
  WorkerReady,
  WorkerRequest,
} from './protocol.js';
import { decodeReply, encodeBatch } from './wire-batch.js';
import type { TxListener, WriterPort } from './writer-port.js';

export type { TxListener } from './writer-port.js';

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** Distributes `Omit` over a union. */
type RequestBody<T> = T extends unknown ? Omit<T, 'id'> : never;

export class WriterClient implements WriterPort {
  readonly #worker: Worker;
  readonly #logger: Logger;
  /** Requests sent and not yet answered, by id. */
  readonly #pending = new Map<number, Pending>();
  /** Interactive transactions waiting for or holding the writer, by id. */
  readonly #tx = new Map<number, TxListener>();
  #nextId = 1;
  /** Set once the worker is gone; every request fails with it. */
  #dead: Error | undefined;

  private constructor(worker: Worker, logger: Logger) {
    this.#worker = worker;
    this.#logger = logger;
  }

  /** Starts the worker and waits for its connection to be open and verified. */
  static async start(
    init: WorkerInit,
    logger: Logger,
  ): Promise<{ client: WriterClient; settings: SettingsReadBack }> {
    const worker = spawnWorker('writer-worker', import.meta.url, init);
    const ready = await firstMessage<WorkerReady>(worker);
    if (ready.type === 'open-failed') {
      await worker.terminate();
      throw fromWireError(ready.error);
    }
    const client = new WriterClient(worker, logger);
    client.#listen();
    // The worker keeps the process alive only while a request is in flight (see #request), so
    // an app that forgets close() still exits: its `beforeExit` runs close() (shutdown.ts).
    worker.unref();
    return { client, settings: ready.settings };
  }

  #listen(): void {
    this.#worker.on('message', (message: WorkerMessage) => {
      switch (message.type) {
        case 'reply': {
          const pending = this.#pending.get(message.id);
          if (pending === undefined) return;
          this.#pending.delete(message.id);
          if (this.#pending.size === 0) this.#worker.unref();
          if (message.ok) pending.resolve(message.value);
          else pending.reject(fromWireError(message.error));
          return;
        }
        case 'tx-ready':
          this.#tx.get(message.txId)?.ready();
          return;
        case 'tx-timeout':
          this.#tx.get(message.txId)?.timedOut();
          return;
        case 'log':
          this.#logger[message.level](message.data ?? {}, message.msg);
          return;
      }
    });
    const die = (error: Error) => {
      if (this.#dead !== undefined) return;
      this.#dead = error;
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    this.#worker.on('error', (error) => {
      this.#logger.error({ err: error }, 'writer worker failed');
      die(
        new WalguardError('IO_ERROR', `The writer worker failed: ${error.message}`, {
          cause: error,
        }),
      );
    });
    this.#worker.on('exit', (code) => {
      die(new WalguardError('CLOSED', `The writer worker exited (code ${code})`));
    });
  }

  #request<T>(body: RequestBody<WorkerRequest>): Promise<T> {
    if (this.#dead !== undefined) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    if (this.#pending.size === 0) this.#worker.ref();
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#worker.postMessage({ ...body, id } as WorkerRequest);
    });
  }

  /** Runs a batch as one transaction. */
  async runBatch(units: WireUnit[], durable: boolean): Promise<BatchReply> {
    const batch = encodeBatch(units);
    const reply = await this.#request<WireBatchReply>({ op: 'batch', batch, durable });
    return decodeReply(batch, reply);
  }

  /** Registers an interactive transaction's callbacks before its unit is queued. */
  watchTx(txId: number, listener: TxListener): void {
    this.#tx.set(txId, listener);
  }

  /** Forgets an interactive transaction. */
  unwatchTx(txId: number): void {
    this.#tx.delete(txId);
  }

  /** Runs one statement inside interactive transaction `txId`. */
  txExec(txId: number, statement: WireStatement): Promise<StatementResult> {
    return this.#request({ op: 'tx-exec', txId, statement });
  }

  /** Ends interactive transaction `txId`. */
  txEnd(txId: number, commit: boolean): Promise<void> {
    return this.#request({ op: 'tx-end', txId, commit });
  }

  /** Reads a PRAGMA on the writer connection (raw row). */
  pragma(name: string): Promise<unknown[]> {
    return this.#request({ op: 'pragma', name });
  }

  /** Runs a WAL checkpoint on the writer connection. */
  checkpoint(mode: CheckpointMode): Promise<CheckpointResult> {
    return this.#request({ op: 'checkpoint', mode });
  }

  /** Closes the writer connection and waits for the worker to exit. */
  async close(): Promise<void> {
    if (this.#dead === undefined) {
      const exited = new Promise((resolve) => this.#worker.once('exit', resolve));
      await this.#request({ op: 'close' });
      // Keep the process alive until the worker is gone: the reply above unref'ed it, and
      // a script whose last step is `await db.close()` would otherwise end mid-close.
      this.#worker.ref();
      await exited;
    }
  }
}
