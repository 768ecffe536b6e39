/**
 * Checkpoints beyond SQLite's own `wal_autocheckpoint`.
 *
 * Strategy:
 * - SQLite's autocheckpoint (PASSIVE, on the committing connection, every
 *   `wal_autocheckpoint` pages) stays on: it is cheap and keeps a steady WAL small.
 * - Idle: once the write queue has been idle for `idleMs`, a PASSIVE checkpoint copies the
 *   WAL back into the database while nobody is waiting, so the next burst starts small and a
 *   crash has less WAL to replay.
 * - Size cap: after a batch, if the WAL file is larger than `walSizeLimitBytes` (a long burst,
 *   or a reader that held a snapshot while autocheckpoints could not finish), a TRUNCATE
 *   checkpoint runs and shrinks the file to zero. `journal_size_limit` is set to the same cap,
 *   so SQLite itself truncates an over-size WAL after a later reset.
 * - Close: TRUNCATE, run by `Walguard.close()`.
 *
 * Every checkpoint runs through the write queue's `exclusive()`, between batches, so none
 * runs inside a write transaction. PASSIVE never blocks the writer or readers; TRUNCATE waits
 * (up to `busy_timeout`) for readers to move past the WAL's end and blocks new writers
 * meanwhile — which is why it only runs past the cap, when the queue is idle, or on close.
 *
 * Starvation: a checkpoint that could not finish (SQLite's `busy` flag: a reader holds an old
 * snapshot) is counted (`stats().checkpointsBlocked`) and logged with the WAL size by
 * `Walguard`, so an app that keeps a long read open (an unfinished `stream()`, for one) sees
 * why its WAL keeps growing.
 */
import type { Logger } from 'pino';
import type { CheckpointMode } from '../queue/protocol.js';

/** Checkpoint policy (see `CheckpointOptions`). */
export interface CheckpointPolicy {
  idleMs: number;
  walSizeLimitBytes: number;
}

export class Checkpointer {
  readonly #policy: CheckpointPolicy;
  readonly #run: (mode: CheckpointMode, reason: 'idle' | 'wal-size') => Promise<unknown>;
  readonly #walBytes: () => number;
  readonly #logger: Logger;
  /** The idle timer; restarted after every batch. */
  #idleTimer: NodeJS.Timeout | undefined;
  /** True while a size-cap checkpoint is queued or running (one at a time). */
  #truncating = false;
  #stopped = false;

  constructor(
    policy: CheckpointPolicy,
    run: (mode: CheckpointMode, reason: 'idle' | 'wal-size') => Promise<unknown>,
    walBytes: () => number,
    logger: Logger,
  ) {
    this.#policy = policy;
    this.#run = run;
    this.#walBytes = walBytes;
    this.#logger = logger;
  }

  /** Called after every batch. */
  afterBatch(): void {
    if (this.#stopped) return;
    if (this.#policy.idleMs > 0) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = setTimeout(() => this.#checkpoint('PASSIVE', 'idle'), this.#policy.idleMs);
      this.#idleTimer.unref();
    }
    if (!this.#truncating && this.#walBytes() > this.#policy.walSizeLimitBytes) {
      this.#truncating = true;
      void this.#checkpoint('TRUNCATE', 'wal-size').finally(() => {
        this.#truncating = false;
      });
    }
  }

  async #checkpoint(mode: CheckpointMode, reason: 'idle' | 'wal-size'): Promise<void> {
    if (this.#stopped) return;
    if (reason === 'idle' && this.#walBytes() === 0) return;
    try {
      // The runner counts and logs a checkpoint that readers kept from finishing.
      await this.#run(mode, reason);
    } catch (error) {
      if (!this.#stopped) this.#logger.warn({ err: error, mode, reason }, 'checkpoint failed');
    }
  }

  /** Stops the timers; pending checkpoints are skipped. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#idleTimer);
  }
}
