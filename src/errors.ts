/**
 * Errors raised by walguard.
 *
 * Two families, deliberately distinguishable:
 * - `WalguardError`: walguard's own conditions, with a stable `code` (below). Callers branch
 *   on `code`, never on the message.
 * - `SqliteError`: a unit's SQL failed (constraint, syntax, …). It keeps SQLite's own extended
 *   code (`SQLITE_CONSTRAINT_UNIQUE`, `rawCode` 2067) so apps can handle it as they would with
 *   any SQLite binding; only that unit was rolled back. On PostgreSQL the same role is
 *   `PostgresError`'s, with the SQLSTATE in `code`.
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
  /**
   * A call was refused before anything ran: `write()`/`defer()` got something other than
   * query builders or compiled queries, or a statement would end, start or escape the batch's
   * transaction (BEGIN, COMMIT, ROLLBACK, SAVEPOINT…), change a setting walguard verified at
   * open (PRAGMA synchronous = …), or run outside it (ATTACH, VACUUM, a checkpoint).
   */
  | 'INVALID_ARGUMENT'
  /** The call does not apply to this engine (e.g. `checkpoint()` on PostgreSQL); nothing was done. */
  | 'UNSUPPORTED'
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

/**
 * A unit's SQL failed on PostgreSQL; `code` is the SQLSTATE (`23505` for a unique violation),
 * and the server's fields that name what failed are kept.
 */
export class PostgresError extends Error {
  /** The SQLSTATE, e.g. `23505`. */
  readonly code: string;
  /** The server's DETAIL line, when it sent one. */
  readonly detail: string | undefined;
  /** The constraint that failed, when the server named one. */
  readonly constraint: string | undefined;
  /** The table, when the server named one. */
  readonly table: string | undefined;
  /** The column, when the server named one. */
  readonly column: string | undefined;

  constructor(message: string, code: string, fields: PostgresErrorFields = {}) {
    super(message);
    this.name = 'PostgresError';
    this.code = code;
    this.detail = fields.detail;
    this.constraint = fields.constraint;
    this.table = fields.table;
    this.column = fields.column;
  }
}

/** The fields of a PostgreSQL error walguard keeps. */
export interface PostgresErrorFields {
  detail?: string | undefined;
  constraint?: string | undefined;
  table?: string | undefined;
  column?: string | undefined;
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
  // SQLITE_BUSY means another connection holds the lock — another process, since this one
  // has a single writer — except "SQL statements in progress", which is this connection's
  // own unfinished statement (not a lock, and not another process). SQLITE_LOCKED is a
  // conflict inside this connection (e.g. DROP TABLE under a running read): the unit's own.
  if (code.startsWith('SQLITE_BUSY') && !isOwnBusy(error)) return 'LOCKED';
  if (code === 'SQLITE_NOMEM' || code === 'SQLITE_CANTOPEN') return 'IO_ERROR';
  return undefined;
}

/** True for SQLITE_BUSY raised by this connection's own statements still in progress. */
export function isOwnBusy(error: unknown): boolean {
  const message = (error as EngineErrorLike | null)?.message;
  return typeof message === 'string' && message.includes('statements in progress');
}

/** Converts an engine error into the error a caller receives for a failed unit. */
export function toUnitError(error: unknown): Error {
  if (
    error instanceof WalguardError ||
    error instanceof SqliteError ||
    error instanceof PostgresError
  ) {
    return error;
  }
  const e = error as EngineErrorLike | null;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const rawCode = typeof e?.rawCode === 'number' ? e.rawCode : undefined;
  return new SqliteError(message, engineCode(error), rawCode);
}

/** A plain-data form of an error, to cross the worker-thread boundary. */
export interface WireError {
  /** `walguard` for WalguardError, `sqlite` for SqliteError, `postgres` for PostgresError. */
  kind: 'walguard' | 'sqlite' | 'postgres';
  /** The code (walguard code or SQLite code name). */
  code: string;
  /** SQLite's numeric code, for `sqlite` errors. */
  rawCode?: number | undefined;
  /** The message. */
  message: string;
  /** WalguardError details. */
  details?: WalguardErrorDetails | undefined;
  /** The underlying error's message, code and kind, for `walguard` errors with a cause. */
  cause?: { message: string; code: string; kind?: 'sqlite' | 'postgres' | 'other' } | undefined;
  /** PostgresError fields, for `postgres` errors. */
  fields?: PostgresErrorFields | undefined;
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
      cause: cause === undefined ? undefined : wireCause(cause),
    };
  }
  if (error instanceof PostgresError) {
    const { detail, constraint, table, column } = error;
    const fields = { detail, constraint, table, column };
    return { kind: 'postgres', code: error.code, message: error.message, fields };
  }
  const unit = toUnitError(error) as SqliteError;
  return { kind: 'sqlite', code: unit.code, rawCode: unit.rawCode, message: unit.message };
}

/** A walguard error's cause for the wire: an engine's error, or another (a lost socket, say). */
function wireCause(cause: EngineErrorLike): NonNullable<WireError['cause']> {
  const message = String(cause.message ?? cause);
  const code = typeof cause.code === 'string' ? cause.code : '';
  // node-postgres' DatabaseError carries the server's severity; its SQLSTATE is the code.
  if (
    cause instanceof PostgresError ||
    typeof (cause as { severity?: unknown }).severity === 'string'
  ) {
    return { message, code, kind: 'postgres' };
  }
  if (cause instanceof SqliteError || code.startsWith('SQLITE')) {
    return { message, code: engineCode(cause), kind: 'sqlite' };
  }
  return { message, code, kind: 'other' };
}

/** Rebuilds an error received from the writer worker. */
export function fromWireError(wire: WireError): Error {
  if (wire.kind === 'walguard') {
    const c = wire.cause;
    const cause =
      c === undefined
        ? undefined
        : c.kind === 'postgres'
          ? new PostgresError(c.message, c.code)
          : c.kind === 'other'
            ? Object.assign(new Error(c.message), c.code === '' ? {} : { code: c.code })
            : new SqliteError(c.message, c.code);
    return new WalguardError(wire.code as WalguardErrorCode, wire.message, {
      cause,
      details: wire.details,
    });
  }
  if (wire.kind === 'postgres') return new PostgresError(wire.message, wire.code, wire.fields);
  return new SqliteError(wire.message, wire.code, wire.rawCode);
}

/** Where a caller called walguard: a captured stack (see `captureCallSite`, `withCallerStack`). */
export interface CallSite {
  readonly stack?: string;
}

/**
 * Captures the current stack, async callers included: called in the continuation of an
 * awaited call, it lists the app's functions awaiting it (V8's zero-cost async stack traces),
 * for errors settled from the queue or the writer's replies, whose own stacks end in p-queue
 * and MessagePort frames. It costs microseconds (bench/micro/call-site-cost.ts): walguard
 * calls it when a call fails, never on the success path.
 */
export function captureCallSite(frames = CALL_SITE_FRAMES): CallSite {
  const site: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = frames;
  Error.captureStackTrace(site, captureCallSite);
  Error.stackTraceLimit = limit;
  return site;
}

/** Frames kept of a caller's stack: Kysely's own (executor, connection provider, builder) take the default ten, so more. */
const CALL_SITE_FRAMES = 32;

/**
 * A copy of `error` whose stack goes on with the frames of `site` (as Kysely's PostgreSQL and
 * MySQL drivers extend theirs). A copy, because one error may reach several callers (every
 * unit of a failed batch). The stack text is built when it is first read: formatting frames
 * is the expensive part, and most errors are handled without it.
 */
export function withCallerStack<E>(error: E, site: CallSite): E {
  if (!(error instanceof Error)) return error;
  const copy = Object.create(Object.getPrototypeOf(error) as object) as Error;
  for (const key of Reflect.ownKeys(error)) {
    if (key !== 'stack')
      Object.defineProperty(copy, key, Object.getOwnPropertyDescriptor(error, key)!);
  }
  const own = (value: unknown) =>
    Object.defineProperty(copy, 'stack', { value, writable: true, configurable: true });
  Object.defineProperty(copy, 'stack', {
    get() {
      const callers = site.stack ?? '';
      const frames = callers.slice(callers.indexOf('\n') + 1);
      const text = `${error.stack ?? `${error.name}: ${error.message}`}\n${frames}`;
      own(text);
      return text;
    },
    set: own,
    configurable: true,
  });
  return copy as E;
}
