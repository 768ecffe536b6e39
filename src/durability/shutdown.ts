/**
 * Graceful shutdown on signals, and when the app ends without `close()`.
 *
 * The rule: walguard acts on a signal only when nothing else listens to it. An app (or a
 * library) that listens to SIGINT, SIGTERM or SIGHUP owns shutdown for that signal, as Node
 * itself has it (a listener replaces the default action): its handler writes its last records
 * and calls `db.close()`; walguard neither closes the database under it nor exits.
 *
 * Strategy: while at least one database is open, walguard listens for `beforeExit`; while at
 * least one with `handleSignals` is open, also for SIGINT, SIGTERM and SIGHUP. On a signal
 * that only walguard listens to, it closes every such database (drain the queue, TRUNCATE
 * checkpoint, close connections, release the lock) within `shutdownTimeoutMs`, removes its
 * listeners and raises the signal again, so the process exits exactly as it would have
 * without walguard (status 128 + signal number, as shells report). A second signal while
 * closing exits at once (status 128 + n): the operator insisted, and units not yet committed
 * were never acknowledged.
 *
 * Tried and changed: walguard used to close on every signal, the app's handler or not; an app
 * whose handler wrote a final record then got `CLOSED` (walguard's listener, registered at
 * open, ran first). Closing "after the app's listeners had their turn" was rejected too: an
 * async handler's write can come any time later, and no grace period is right for all apps.
 *
 * `beforeExit` (the event loop ran dry with databases still open) closes them all, with or
 * without `handleSignals`: deferred units still queued are flushed and committed, as the
 * contract promises. Closing keeps the loop alive until it is done, and the process then
 * exits normally. (`process.exit()` skips `beforeExit`: call `close()` before it.)
 *
 * Invariants: listeners are installed once for all databases and removed when the last one
 * closes, so a closed walguard leaves the process's signal behaviour as it found it.
 */
import os from 'node:os';
import type { Logger } from 'pino';

/** What shutdown needs of an open database. */
export interface Closable {
  close(): Promise<void>;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type Signal = (typeof SIGNALS)[number];

const open = new Map<Closable, { timeoutMs: number; logger: Logger; signals: boolean }>();
let signalsInstalled = false;
let exitInstalled = false;
let shuttingDown = false;

/**
 * Registers an open database (`signals`: its `handleSignals`); returns the function that
 * unregisters it.
 */
export function registerForShutdown(
  db: Closable,
  timeoutMs: number,
  logger: Logger,
  signals: boolean,
): () => void {
  open.set(db, { timeoutMs, logger, signals });
  install();
  return () => {
    open.delete(db);
    if (!shuttingDown) install();
  };
}

/** Brings the listeners in line with the open databases. */
function install(): void {
  const wantSignals = [...open.values()].some((e) => e.signals);
  if (wantSignals !== signalsInstalled) {
    signalsInstalled = wantSignals;
    for (const signal of SIGNALS) {
      if (wantSignals) process.on(signal, onSignal);
      else process.off(signal, onSignal);
    }
  }
  const wantExit = open.size > 0;
  if (wantExit !== exitInstalled) {
    exitInstalled = wantExit;
    if (wantExit) process.on('beforeExit', onBeforeExit);
    else process.off('beforeExit', onBeforeExit);
  }
}

function exitCode(signal: Signal): number {
  return 128 + (os.constants.signals[signal] ?? 1);
}

async function onSignal(signal: Signal): Promise<void> {
  if (shuttingDown) {
    process.exit(exitCode(signal));
  }
  // Another listener (the app's) owns shutdown for this signal: see the file header.
  if (process.listenerCount(signal) > 1) return;
  shuttingDown = true;
  const entries = [...open.entries()].filter(([, e]) => e.signals);
  const timeoutMs = Math.max(...entries.map(([, e]) => e.timeoutMs), 1);
  for (const [, { logger }] of entries) {
    logger.info({ signal, timeoutMs }, 'signal received: closing the database');
  }
  const timer = setTimeout(() => {
    for (const [, { logger }] of entries) logger.error({ signal }, 'close timed out; exiting');
    process.exit(exitCode(signal));
  }, timeoutMs);
  await Promise.allSettled(entries.map(([db]) => db.close()));
  clearTimeout(timer);
  shuttingDown = false;
  install();
  if (process.listenerCount(signal) === 0) {
    // Nobody else handles it: take the default action, as without walguard.
    process.kill(process.pid, signal);
  }
}

function onBeforeExit(): void {
  if (open.size === 0 || shuttingDown) return;
  for (const db of [...open.keys()]) void db.close();
}
