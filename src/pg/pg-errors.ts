/**
 * PostgreSQL errors, as walguard reports them.
 *
 * Two kinds, as on SQLite:
 * - A unit's own SQL error (constraint, syntax, a lock or statement timeout, a deadlock): a
 *   `PostgresError` whose `code` is the SQLSTATE; the unit is rejected alone.
 * - An error that breaks the whole batch or the connection: a `WalguardError` with
 *   walguard's code — `IO_ERROR` for a lost connection (class 08, a server shutting down:
 *   class 57P, a FATAL or PANIC message, a socket error) and for the server's I/O errors
 *   (class 58), `DISK_FULL` for 53100, `CORRUPT` for XX001/XX002.
 */
import { PostgresError, type WalguardErrorCode } from '../errors.js';

/** The shape of an error from node-postgres (a server `DatabaseError` or a socket error). */
interface PgErrorLike {
  message?: unknown;
  code?: unknown;
  severity?: unknown;
  detail?: unknown;
  constraint?: unknown;
  table?: unknown;
  column?: unknown;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The SQLSTATE of a server error, or `undefined` for a client-side (socket) error. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as PgErrorLike | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
}

/**
 * walguard's code for an error that fails the whole batch (and, for `IO_ERROR`, means the
 * connection is gone), or `undefined` for an error of one unit.
 */
export function pgFatalCode(error: unknown): WalguardErrorCode | undefined {
  const state = sqlState(error);
  const severity = (error as PgErrorLike | null)?.severity;
  if (state === undefined) return 'IO_ERROR';
  if (severity === 'FATAL' || severity === 'PANIC') return 'IO_ERROR';
  if (state === '53100') return 'DISK_FULL';
  if (state === 'XX001' || state === 'XX002') return 'CORRUPT';
  if (state.startsWith('08') || state.startsWith('57P') || state.startsWith('58')) {
    return 'IO_ERROR';
  }
  return undefined;
}

/** A server error as the `PostgresError` a caller receives. */
export function toPostgresError(error: unknown): PostgresError {
  if (error instanceof PostgresError) return error;
  const e = error as PgErrorLike | null;
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return new PostgresError(
    typeof e?.message === 'string' ? e.message : String(error),
    sqlState(error) ?? 'XX000',
    {
      detail: text(e?.detail),
      constraint: text(e?.constraint),
      table: text(e?.table),
      column: text(e?.column),
    },
  );
}
