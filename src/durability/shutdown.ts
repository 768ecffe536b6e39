/**
 * Graceful shutdown on signals, and when the app ends without `close()`.
 *
 * Strategy: while at least one database is open, walguard listens for `beforeExit`; while at
 * least one with `handleSignals` is open, also for SIGINT, SIGTERM and SIGHUP. On the first signal it closes every such
 * database (drain the queue, TRUNCATE checkpoint, close connections, release the lock) within
 * `shutdownTimeoutMs`, removes its listeners, and — when no other listener of that signal
 * remains — raises the signal again, so the process exits exactly as it would have without
 * walguard (status 128 + signal number, as shells report). When the app or another library
 * listens to the signal too, walguard does not exit the process: their handler decides, as it
 * would have. A second signal while closing exits at once (status 128 + n): the operator
 * insisted, and units not yet committed were never acknowledged.
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
