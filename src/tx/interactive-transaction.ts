/**
 * An interactive transaction: a unit whose statements are decided while it runs.
 *
 * It is queued like any unit. When the writer reaches it inside a batch, it opens a
 * SAVEPOINT and tells us (`tx-ready`); from then on each statement is sent to the writer and
 * runs inside that savepoint, so reads see the transaction's own writes. `commit()` releases
 * the savepoint and then waits for the batch's COMMIT — only then is the transaction durable
 * and acknowledged. `rollback()` undoes it alone; the batch goes on.
 *
 * While it is open the writer waits for it, so it holds up the writes queued behind it: the
 * writer rolls it back after `transactionTimeoutMs` (`TX_TIMEOUT`). A transaction that awaits
 * another walguard write (not through its own `trx`) would wait for itself; the timeout is what
 * ends such a deadlock.
 */
import { performance } from 'node:perf_hooks';
import { WalguardError } from '../errors.js';
import type { StatementResult, WireStatement } from '../queue/protocol.js';
import type { WriteQueue } from '../queue/write-queue.js';
import type { WriterPort } from '../queue/writer-port.js';
import type { Unit } from './unit.js';

let nextTxId = 1;

type State = 'active' | 'timed-out' | 'ended';

export class InteractiveTransaction {
  readonly #client: WriterPort;
  readonly #txId: number;
  /** Settles with the batch's outcome for this unit (after COMMIT). */
  readonly #done: Promise<unknown>;
  #state: State = 'active';

  /** Its own timeout, when not the writer's `transactionTimeoutMs` (migrations). */
  readonly #timeoutMs: number | undefined;

  private constructor(
    client: WriterPort,
    txId: number,
    done: Promise<unknown>,
    timeoutMs: number | undefined,
  ) {
    this.#timeoutMs = timeoutMs;
    this.#client = client;
    this.#txId = txId;
    this.#done = done;
  }

  /** Queues the transaction and resolves once the writer has opened its savepoint. */
  static async begin(
    queue: WriteQueue,
    client: WriterPort,
    ticket = 0,
    timeoutMs?: number,
  ): Promise<InteractiveTransaction> {
    const txId = nextTxId++;
    let onReady!: () => void;
    let onTimeout!: () => void;
    const ready = new Promise<void>((resolve) => {
      onReady = resolve;
    });
    let resolveDone!: (value: unknown) => void;
    let rejectDone!: (error: Error) => void;
    const done = new Promise<unknown>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    // A rolled-back transaction's unit rejects; nobody may be awaiting it by then.
    done.catch(() => {});
    client.watchTx(txId, { ready: () => onReady(), timedOut: () => onTimeout() });
    const unit: Unit = {
      wire:
        timeoutMs === undefined
          ? { kind: 'interactive', txId }
          : { kind: 'interactive', txId, timeoutMs },
      critical: true,
      bytes: 64,
      ticket,
      submittedAt: performance.now(),
      resolve: resolveDone,
      reject: rejectDone,
    };
    try {
      await queue.add(unit);
      // The batch may fail before the writer reaches this unit: then `done` rejects first.
      await Promise.race([ready, done]);
    } catch (error) {
      client.unwatchTx(txId);
      throw error;
    }
    const tx = new InteractiveTransaction(client, txId, done, timeoutMs);
    onTimeout = () => {
      tx.#state = 'timed-out';
    };
    return tx;
  }

  /** Runs one statement inside the transaction. */
  async execute(statement: WireStatement): Promise<StatementResult> {
    this.#assertActive();
    return this.#client.txExec(this.#txId, statement);
  }

  /** Releases the savepoint and resolves once the batch holding it has committed durably. */
  async commit(): Promise<void> {
    this.#assertActive();
    this.#state = 'ended';
    try {
      await this.#client.txEnd(this.#txId, true);
      await this.#done;
    } finally {
      this.#client.unwatchTx(this.#txId);
    }
  }

  /** Rolls the transaction back alone. */
  async rollback(): Promise<void> {
    const state = this.#state;
    this.#state = 'ended';
    try {
      if (state === 'active') await this.#client.txEnd(this.#txId, false);
    } catch (error) {
      // Already rolled back by the writer (timeout or a failed batch): nothing left to undo.
      if (!(error instanceof WalguardError && error.code === 'TX_TIMEOUT')) throw error;
    } finally {
      this.#client.unwatchTx(this.#txId);
    }
  }

  #assertActive(): void {
    if (this.#state === 'timed-out') {
      throw new WalguardError(
        'TX_TIMEOUT',
        `The transaction exceeded ${this.#timeoutMs === undefined ? 'transactionTimeoutMs' : `its timeout (${this.#timeoutMs} ms)`} and was rolled back; nothing of it was applied`,
      );
    }
    if (this.#state === 'ended') {
      throw new Error('The transaction has already been committed or rolled back');
    }
  }
}
