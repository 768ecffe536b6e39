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
 * Errors: a checkpoint that fails because the disk is full or the OS reported an I/O error
 * rejects with `DISK_FULL` / `IO_ERROR` (the engine's `SQLITE_FULL` / `SQLITE_IOERR_*` is the
 * `cause`), like a failed batch. Nothing is lost by it: every frame stays in the WAL, which a
 * later checkpoint (or the next open's recovery) copies back; the WAL just keeps growing until
 * space returns.
 *
 * Starvation: a checkpoint that could not finish (SQLite's `busy` flag: a reader holds an old
 * snapshot) is counted (`stats().checkpointsBlocked`) and logged with the WAL size, so an app
 * that keeps a long read open (an unfinished `stream()`, for one) sees why its WAL keeps
 * growing.
 */
import { statSync } from 'node:fs';
import type { Logger } from 'pino';
import { batchFatalCode, WalguardError } from '../errors.js';
import { hasSubscribers, publish } from '../metrics/channels.js';
import type { CheckpointMode, CheckpointResult } from '../queue/protocol.js';

/** Checkpoint policy (see `CheckpointOptions`). */
export interface CheckpointPolicy {
  idleMs: number;
  walSizeLimitBytes: number;
}

/** Payload of the `checkpoint` event. */
export type CheckpointEvent = CheckpointResult & {
  /** Why it ran: on demand, on close, … */
  reason: 'manual' | 'close' | 'idle' | 'wal-size';
};

/** What the checkpointer needs from the database. */
export interface CheckpointHost {
  /** The database file (for channel events). */
  path: string;
  /** Runs `PRAGMA wal_checkpoint(mode)` on the writer, between batches. */
  run(mode: CheckpointMode): Promise<CheckpointResult>;
  /** Size of the `-wal` file now, in bytes. */
  walBytes(): number;
  /** Called after every checkpoint (the `checkpoint` event). */
  emit(event: CheckpointEvent): void;
  /** The component logger. */
  logger: Logger;
}

export class Checkpointer {
  readonly #policy: CheckpointPolicy;
  readonly #host: CheckpointHost;
  /** The idle timer; restarted after every batch. */
  #idleTimer: NodeJS.Timeout | undefined;
  /** True while a size-cap checkpoint is queued or running (one at a time). */
  #truncating = false;
  #stopped = false;
  /** Checkpoints run. */
  count = 0;
  /** Of those, checkpoints a reader kept from finishing. */
  blocked = 0;
  /** The last checkpoint run. */
  last: CheckpointEvent | undefined;

  constructor(policy: CheckpointPolicy, host: CheckpointHost) {
    this.#policy = policy;
    this.#host = host;
  }

  /** Called after every batch. */
  afterBatch(): void {
    if (this.#stopped) return;
    if (this.#policy.idleMs > 0) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = setTimeout(() => this.#auto('PASSIVE', 'idle'), this.#policy.idleMs);
      this.#idleTimer.unref();
    }
    if (!this.#truncating && this.#host.walBytes() > this.#policy.walSizeLimitBytes) {
      this.#truncating = true;
      void this.#auto('TRUNCATE', 'wal-size').finally(() => {
        this.#truncating = false;
      });
    }
  }

  /** Runs one checkpoint now (between batches), counts, logs and reports it. */
  async run(mode: CheckpointMode, reason: CheckpointEvent['reason']): Promise<CheckpointEvent> {
    const host = this.#host;
    let result: CheckpointResult;
    try {
      result = await host.run(mode);
    } catch (error) {
      throw checkpointError(error, mode, host.path);
    }
    const event: CheckpointEvent = { ...result, reason };
    this.count++;
    this.last = event;
    if (event.busy) {
      this.blocked++;
      host.logger.warn(
        { ...event, walBytes: host.walBytes(), blocked: this.blocked },
        'a checkpoint could not finish: a reader holds an old snapshot (an unfinished stream or a long read?)',
      );
    } else {
      host.logger.debug(event, 'checkpoint');
    }
    host.emit(event);
    if (hasSubscribers('checkpoint')) publish('checkpoint', { path: host.path, ...result, reason });
    return event;
  }

  async #auto(mode: CheckpointMode, reason: 'idle' | 'wal-size'): Promise<void> {
    if (this.#stopped) return;
    if (reason === 'idle' && this.#host.walBytes() === 0) return;
    try {
      await this.run(mode, reason);
    } catch (error) {
      if (!this.#stopped) this.#host.logger.warn({ err: error, mode, reason }, 'checkpoint failed');
    }
  }

  /** Stops the timers; pending automatic checkpoints are skipped. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#idleTimer);
  }
}

/**
 * A failed checkpoint's error for the caller: the engine's disk-full and I/O errors become
 * `DISK_FULL` / `IO_ERROR` (with the engine error as `cause`); anything else is unchanged.
 */
function checkpointError(error: unknown, mode: CheckpointMode, path: string): unknown {
  if (error instanceof WalguardError) return error;
  const code = batchFatalCode(error);
  if (code !== 'DISK_FULL' && code !== 'IO_ERROR') return error;
  const what = code === 'DISK_FULL' ? 'the disk is full' : 'the OS reported an I/O error';
  return new WalguardError(
    code,
    `The ${mode} checkpoint of ${path} failed: ${what} (${(error as Error).message}). Nothing is lost: the WAL still holds every commit; checkpoint again once the disk is fixed`,
    { cause: error, details: { mode, engineCode: (error as { code?: string }).code } },
  );
}

/** Size of the database's `-wal` file, in bytes (0 when there is none). `stat` opens no descriptor. */
export function walBytes(dbPath: string): number {
  try {
    // No WAL file (after a TRUNCATE on close, or before the first write): zero bytes. Asked
    // after every batch, so a missing file is answered without an exception.
    return statSync(`${dbPath}-wal`, { throwIfNoEntry: false })?.size ?? 0;
  } catch {
    return 0;
  }
}
