/**
 * The close sequence: what `db.close()` does once intake has stopped.
 *
 * Order, and why:
 * 1. Stop the checkpointer's timers and wait for a running backup (its child process reads
 *    the database; the closing checkpoint below would otherwise wait on its snapshot).
 * 2. One `setImmediate`: Kysely calls made before `close()` reach the queue a few microtasks
 *    after their call; this lets every one of them arrive.
 * 3. Drain the queue: every unit called before `close()`, critical and deferred, commits.
 * 4. Close the reads: every read queued or in flight on a reader thread finishes, open streams
 *    end, then every read connection closes, so that no snapshot can keep the checkpoint from
 *    finishing.
 * 5. `wal_checkpoint(TRUNCATE)`: the WAL's frames are copied into the database file, fsynced,
 *    and the WAL emptied. Its failure is logged, not thrown: everything acknowledged is
 *    already durable in the WAL, which the next open replays.
 * 6. Close the writer worker, release the process lock, unregister from shutdown handling.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { hasSubscribers, publish } from '../metrics/channels.js';
import type { CheckpointEvent } from './checkpointer.js';

/** What closing needs of an open database. */
export interface ClosingParts {
  /** The database file (for the `walguard:close` channel event). */
  path: string;
  logger: Logger;
  /** The checkpointer; none for a database whose engine checkpoints itself (PostgreSQL). */
  checkpointer:
    | {
        stop(): void;
        run(mode: 'TRUNCATE', reason: 'close'): Promise<CheckpointEvent>;
      }
    | undefined;
  backups: { stop(): Promise<void> };
  queue: { readonly pending: number; drain(): Promise<void> };
  reads: { close(): void | Promise<void> };
  client: { close(): Promise<void> };
  lock: { release(): Promise<void> };
  /** Removes the database from signal and `beforeExit` handling. */
  unregister(): void;
}

/** Runs the close sequence; see the file header. */
export async function closeSequence(parts: ClosingParts): Promise<void> {
  const log = parts.logger;
  const started = performance.now();
  parts.checkpointer?.stop();
  await parts.backups.stop();
  await new Promise<void>((resolve) => setImmediate(resolve));
  log.info({ pending: parts.queue.pending }, 'closing: draining the write queue');
  await parts.queue.drain();
  try {
    await parts.reads.close();
  } catch (error) {
    log.warn({ err: error }, 'closing the readers failed');
  }
  try {
    const result = await parts.checkpointer?.run('TRUNCATE', 'close');
    if (result?.busy) log.warn(result, 'the closing checkpoint could not finish');
  } catch (error) {
    log.error({ err: error }, 'the closing checkpoint failed; the WAL is replayed on next open');
  }
  await parts.client.close();
  await parts.lock.release();
  parts.unregister();
  log.info('closed');
  if (hasSubscribers('close')) {
    publish('close', { path: parts.path, durationMs: performance.now() - started });
  }
}
