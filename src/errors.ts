/**
 * Errors raised by walguard.
 *
 * Two families, deliberately distinguishable:
 * - `WalguardError`: walguard's own conditions, with a stable `code` (below). Callers branch
 *   on `code`, never on the message.
 * - `SqliteError`: a unit's SQL failed (constraint, syntax, …). It keeps SQLite's own extended
 *   code (`SQLITE_CONSTRAINT_UNIQUE`, `rawCode` 2067) so apps can handle it as they would with
 *   any SQLite binding; only that unit was rolled back.
 */

/** The stable codes of `WalguardError`. */
export type WalguardErrorCode =
  /** The database is closed or closing; nothing was queued. */
  | 'CLOSED'
  /** The write queue stayed full for longer than `queueTimeoutMs`; nothing was queued. */
  | 'QUEUE_FULL'
  /** Another connection or process owns the database. */
  | 'LOCKED'
  /** The database is encrypted and no key or passphrase was given. */
  | 'KEY_REQUIRED'
  /** The key or passphrase does not open this database. */
  | 'WRONG_KEY'
  /** A key was given but the file is a plaintext SQLite database; nothing was written to it. */
  | 'NOT_ENCRYPTED'
  /** The file is damaged (integrity check failed, or not a database at all). */
  | 'CORRUPT'
  /** The disk is full; the batch was rolled back and nothing of it is visible. */
  | 'DISK_FULL'
  /** The OS reported an I/O error; the batch was rolled back and never reported durable. */
  | 'IO_ERROR'
  /** An option is invalid, or a setting did not read back as configured. */
  | 'INVALID_OPTION'
  /** An interactive transaction outlived `transactionTimeoutMs` and was rolled back. */
  | 'TX_TIMEOUT'
  /** A restore was given a backup of another database; nothing was changed. */
  | 'WRONG_DATABASE';

/** Extra, code-specific facts attached to an error (e.g. the owner pid of a lock). */
export type WalguardErrorDetails = Readonly<Record<string, unknown>>;

/** walguard's own error: branch on `code`. */
export class WalguardError extends Error {
  /** The stable code; see `WalguardErrorCode`. */
  readonly code: WalguardErrorCode;
  /** Code-specific facts (never secrets, never row data). */
  readonly details: WalguardErrorDetails | undefined;

  constructor(
    code: WalguardErrorCode,
    message: string,
    options: { cause?: unknown; details?: WalguardErrorDetails } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WalguardError';
    this.code = code;
    this.details = options.details;
  }
}

/** A unit's SQL failed; `code` is SQLite's extended result code name. */
export class SqliteError extends Error {
  /** SQLite's extended result code name, e.g. `SQLITE_CONSTRAINT_UNIQUE`. */
  readonly code: string;
  /** SQLite's numeric extended result code, e.g. 2067, when the engine reported it. */
  readonly rawCode: number | undefined;

  constructor(message: string, code: string, rawCode?: number) {
    super(message);
    this.name = 'SqliteError';
    this.code = code;
    this.rawCode = rawCode;
  }
}

/** True for walguard's own errors, optionally of one code. */
export function isWalguardError(error: unknown, code?: WalguardErrorCode): error is WalguardError {
  return error instanceof WalguardError && (code === undefined || error.code === code);
}

/** The shape of an error thrown by the `libsql` binding. */
interface EngineErrorLike {
  message?: unknown;
  code?: unknown;
  rawCode?: unknown;
}

/** Reads SQLite's code name from an engine error (`SQLITE_ERROR` when absent). */
export function engineCode(error: unknown): string {
  const code = (error as EngineErrorLike | null)?.code;
  return typeof code === 'string' ? code : 'SQLITE_ERROR';
}

/**
 * Maps an engine error that breaks a whole transaction to walguard's code, or `undefined`
 * when the error belongs to one unit (constraint, syntax, …) and the batch can go on.
 */
export function batchFatalCode(error: unknown): WalguardErrorCode | undefined {
  const code = engineCode(error);
  if (code === 'SQLITE_FULL') return 'DISK_FULL';
  if (code.startsWith('SQLITE_IOERR')) return 'IO_ERROR';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return 'CORRUPT';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'LOCKED';
  if (code === 'SQLITE_NOMEM' || code === 'SQLITE_CANTOPEN') return 'IO_ERROR';
  return undefined;
}

/** Converts an engine error into the error a caller receives for a failed unit. */
export function toUnitError(error: unknown): Error {
  if (error instanceof WalguardError || error instanceof SqliteError) return error;
  const e = error as EngineErrorLike | null;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const rawCode = typeof e?.rawCode === 'number' ? e.rawCode : undefined;
  return new SqliteError(message, engineCode(error), rawCode);
}

/** A plain-data form of an error, to cross the worker-thread boundary. */
export interface WireError {
  /** `walguard` for WalguardError, `sqlite` for SqliteError. */
  kind: 'walguard' | 'sqlite';
  /** The code (walguard code or SQLite code name). */
  code: string;
  /** SQLite's numeric code, for `sqlite` errors. */
  rawCode?: number | undefined;
  /** The message. */
  message: string;
  /** WalguardError details. */
  details?: WalguardErrorDetails | undefined;
  /** The underlying engine error's message and code, for `walguard` errors with a cause. */
  cause?: { message: string; code: string } | undefined;
}

/** Serializes an error for `postMessage`. */
export function toWireError(error: unknown): WireError {
  if (error instanceof WalguardError) {
    const cause = error.cause as EngineErrorLike | undefined;
    return {
      kind: 'walguard',
      code: error.code,
      message: error.message,
      details: error.details,
      cause:
        cause === undefined
          ? undefined
          : { message: String(cause.message ?? cause), code: engineCode(cause) },
    };
  }
  const unit = toUnitError(error) as SqliteError;
  return { kind: 'sqlite', code: unit.code, rawCode: unit.rawCode, message: unit.message };
}

/** Rebuilds an error received from the writer worker. */
export function fromWireError(wire: WireError): Error {
  if (wire.kind === 'walguard') {
    const cause =
      wire.cause === undefined ? undefined : new SqliteError(wire.cause.message, wire.cause.code);
    return new WalguardError(wire.code as WalguardErrorCode, wire.message, {
      cause,
      details: wire.details,
    });
  }
  return new SqliteError(wire.message, wire.code, wire.rawCode);
}
