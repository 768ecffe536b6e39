/**
 * Graceful shutdown on signals.
 *
 * Strategy: while at least one database with `handleSignals` is open, walguard listens for
 * SIGINT, SIGTERM and SIGHUP, and for `beforeExit`. On the first signal it closes every such
 * database (drain the queue, TRUNCATE checkpoint, close connections, release the lock) within
 * `shutdownTimeoutMs`, removes its listeners, and — when no other listener of that signal
 * remains — raises the signal again, so the process exits exactly as it would have without
 * walguard (status 128 + signal number, as shells report). When the app or another library
 * listens to the signal too, walguard does not exit the process: their handler decides, as it
 * would have. A second signal while closing exits at once (status 128 + n): the operator
 * insisted, and units not yet committed were never acknowledged.
 *
 * `beforeExit` (the event loop ran dry with databases still open) closes them; closing keeps
 * the loop alive until it is done, and the process then exits normally.
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

const open = new Map<Closable, { timeoutMs: number; logger: Logger }>();
let installed = false;
let shuttingDown = false;

/** Registers an open database; returns the function that unregisters it. */
export function registerForShutdown(db: Closable, timeoutMs: number, logger: Logger): () => void {
  open.set(db, { timeoutMs, logger });
  install();
  return () => {
    open.delete(db);
    if (open.size === 0 && !shuttingDown) uninstall();
  };
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const signal of SIGNALS) process.on(signal, onSignal);
  process.on('beforeExit', onBeforeExit);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const signal of SIGNALS) process.off(signal, onSignal);
  process.off('beforeExit', onBeforeExit);
}

function exitCode(signal: Signal): number {
  return 128 + (os.constants.signals[signal] ?? 1);
}

async function onSignal(signal: Signal): Promise<void> {
  if (shuttingDown) {
    process.exit(exitCode(signal));
  }
  shuttingDown = true;
  const entries = [...open.entries()];
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
  uninstall();
  shuttingDown = false;
  if (process.listenerCount(signal) === 0) {
    // Nobody else handles it: take the default action, as without walguard.
    process.kill(process.pid, signal);
  }
}

function onBeforeExit(): void {
  if (open.size === 0 || shuttingDown) return;
  for (const db of [...open.keys()]) void db.close();
}
