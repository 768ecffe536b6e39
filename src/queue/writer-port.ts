/**
 * What the write queue, interactive transactions and the facade need of the writer,
 * whatever engine stands behind it: today the libSQL writer worker (`WriterClient`).
 * Depend on this shape, not on the class (as Kysely declares the subset of better-sqlite3
 * it needs), so that another engine's writer can stand in.
 */
import type {
  CheckpointMode,
  CheckpointResult,
  StatementResult,
  WireStatement,
} from './protocol.js';
import type { BatchRunner } from './write-queue.js';

/** Callbacks for interactive transactions. */
export interface TxListener {
  /** The writer opened the transaction's savepoint. */
  ready(): void;
  /** The writer rolled the transaction back because it timed out. */
  timedOut(): void;
}

/** The writer, as seen from the main thread. */
export interface WriterPort extends BatchRunner {
  /** Registers an interactive transaction's callbacks before its unit is queued. */
  watchTx(txId: number, listener: TxListener): void;
  /** Forgets an interactive transaction. */
  unwatchTx(txId: number): void;
  /** Runs one statement inside interactive transaction `txId`. */
  txExec(txId: number, statement: WireStatement): Promise<StatementResult>;
  /** Ends interactive transaction `txId`: commit releases its savepoint, rollback undoes it. */
  txEnd(txId: number, commit: boolean): Promise<void>;
  /** Reads a PRAGMA on the writer connection (raw row); engines without PRAGMAs omit it. */
  pragma?(name: string): Promise<unknown[]>;
  /** Runs a WAL checkpoint; engines without a WAL file of walguard's omit it. */
  checkpoint?(mode: CheckpointMode): Promise<CheckpointResult>;
  /** Closes the writer and waits until it is gone. */
  close(): Promise<void>;
}
