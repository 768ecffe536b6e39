/**
 * The messages between the main thread and the writer worker.
 *
 * Everything that crosses is plain data (structured clone): SQL text, parameters, results
 * and `WireError`s. One batch is one `batch` request; an interactive transaction inside it
 * talks with `tx-*` messages while the batch waits for it on the worker.
 */
import type { ConnectionSettings, SettingsReadBack } from '../durability/connection-settings.js';
import type { WireError } from '../errors.js';

/** One compiled statement. */
export interface WireStatement {
  /** SQL text; also the prepared-statement cache key. */
  sql: string;
  /** Bound parameters (positional). */
  params: readonly unknown[];
}

/** A unit as the worker sees it. */
export type WireUnit =
  /** A fixed list of statements, applied all or nothing under one savepoint. */
  | { kind: 'statements'; statements: WireStatement[] }
  /** An interactive transaction: the worker opens its savepoint, then takes `tx-exec` messages until `tx-end`. */
  | { kind: 'interactive'; txId: number; timeoutMs?: number };

/** The result of one statement, as Kysely's SQLite dialect reports it. */
export interface StatementResult {
  /** Rows for statements that return rows (`SELECT`, `… RETURNING`); empty otherwise. */
  rows: Record<string, unknown>[];
  /** Rows changed, for statements that do not return rows. */
  numAffectedRows?: bigint;
  /** Last inserted rowid, for statements that do not return rows. */
  insertId?: bigint;
}

/** What happened to one unit of a batch. */
export type UnitOutcome =
  | { ok: true; results: StatementResult[] }
  | { ok: false; error: WireError };

/**
 * A batch as it crosses the thread boundary: flat arrays instead of one object per unit and
 * statement. Structured clone costs per object: 256 one-statement units took 589 µs to clone
 * as objects and 92 µs flat (measured here), paid on both sides of every batch.
 */
export interface WireBatch {
  /** Statements per unit, in order; 0 marks an interactive transaction. */
  sizes: Uint32Array;
  /** Transaction ids of the interactive units, in order of appearance. */
  txIds: number[];
  /** Each interactive unit's own timeout in ms (0: the writer's `transactionTimeoutMs`), parallel to `txIds`. */
  txTimeouts: number[];
  /** SQL text of every statement, unit after unit. */
  sql: string[];
  /** Parameter count of every statement. */
  paramCounts: Uint32Array;
  /** All parameters, statement after statement. */
  params: unknown[];
}

/**
 * The writer's answer to a batch, flat like `WireBatch`. Statements are numbered across the
 * batch (interactive units have none).
 */
export interface WireBatchReply {
  /** Set when the batch failed: every unit from `committed` on is rejected and none of it is visible. */
  error?: WireError;
  /** With `error`: units before this index were committed before the failure (their outcomes stand). */
  committed?: number;
  /** Units that failed alone: [unit index, error]. */
  unitErrors: [number, WireError][];
  /** Rows of the statements that return rows: [statement index, rows]. */
  rows: [number, Record<string, unknown>[]][];
  /** Rows changed by each statement (NaN for statements that return rows). */
  changes: Float64Array;
  /** Last inserted rowid after each statement. */
  insertIds: BigInt64Array;
  /** Time from BEGIN to the end of COMMIT, in ms. */
  commitMs: number;
  /** True when the writer had to reopen its connection after the failure. */
  reopened?: boolean;
}

/** Requests from the main thread. */
export type WorkerRequest =
  | { id: number; op: 'batch'; batch: WireBatch; durable: boolean }
  | { id: number; op: 'tx-exec'; txId: number; statement: WireStatement }
  | { id: number; op: 'tx-end'; txId: number; commit: boolean }
  | { id: number; op: 'pragma'; name: string }
  | { id: number; op: 'checkpoint'; mode: CheckpointMode }
  | { id: number; op: 'close' };

/** SQLite's checkpoint modes. */
export type CheckpointMode = 'PASSIVE' | 'FULL' | 'RESTART' | 'TRUNCATE';

/** The result of `PRAGMA wal_checkpoint`. */
export interface CheckpointResult {
  /** The mode that ran. */
  mode: CheckpointMode;
  /** 1 when a reader or writer kept the checkpoint from completing. */
  busy: boolean;
  /** Frames in the WAL. */
  logFrames: number;
  /** Frames copied back into the database. */
  checkpointedFrames: number;
  /** How long it took, in ms. */
  durationMs: number;
}

/** The reply to a `batch` request. */
export interface BatchReply {
  /** One outcome per unit, in order; those from `committed` on failed when `error` is set. */
  outcomes: UnitOutcome[];
  /** Set when the batch failed (COMMIT or transaction error): nothing from `committed` on is visible. */
  error?: WireError;
  /** With `error`: units before this index were committed before the failure (0 when none). */
  committed?: number;
  /** Time from BEGIN to the end of COMMIT, in ms. */
  commitMs: number;
  /** True when the writer had to reopen its connection after the failure. */
  reopened?: boolean;
}

/** Replies and notifications from the worker. */
export type WorkerMessage =
  | { type: 'reply'; id: number; ok: true; value: unknown }
  | { type: 'reply'; id: number; ok: false; error: WireError }
  | { type: 'tx-ready'; txId: number }
  | { type: 'tx-timeout'; txId: number }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; data?: Record<string, unknown> };

/** Data the worker starts with. */
export interface WorkerInit {
  /** Absolute database path. */
  path: string;
  /** Encryption key, if any (never logged). */
  encryptionKey: string | undefined;
  /** Settings for the writer connection. */
  settings: ConnectionSettings;
  /** Interactive transaction timeout in ms. */
  transactionTimeoutMs: number;
}

/** The worker's first message once its connection is open and verified. */
export type WorkerReady =
  | { type: 'ready'; settings: SettingsReadBack }
  | { type: 'open-failed'; error: WireError };
