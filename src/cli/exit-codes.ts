/**
 * The CLI's exit codes and its own errors.
 *
 * Scripts branch on the exit code, so each code is stable and documented (docs/cli.md):
 * 0 ok, 1 a problem was found (or an operation failed for a reason without a code of its
 * own), 2 a usage error (command line or configuration), then one code per condition an
 * operator must act on differently.
 */
import { isWalguardError, type WalguardErrorCode } from '../errors.js';

/** Exit codes, by name. */
export const EXIT = Object.freeze({
  /** Everything is fine. */
  OK: 0,
  /** A problem was found (a check failed on a backup, header problems, a failed operation). */
  PROBLEM: 1,
  /** The command line or the configuration is wrong; nothing was done. */
  USAGE: 2,
  /** Another process owns the database (`LOCKED`). */
  LOCKED: 3,
  /** The key or passphrase does not open the database (`WRONG_KEY`). */
  WRONG_KEY: 4,
  /** The database is encrypted and no key was given, or its key file is missing (`KEY_REQUIRED`). */
  KEY_REQUIRED: 5,
  /** A key was given for a plaintext database (`NOT_ENCRYPTED`). */
  NOT_ENCRYPTED: 6,
  /** The database (or the backup to restore) is damaged (`CORRUPT`). */
  CORRUPT: 7,
  /** The database or backup file does not exist. */
  NOT_FOUND: 8,
  /** The operator declined the confirmation; nothing was changed. */
  ABORTED: 9,
  /** The backup given to restore belongs to another database (`WRONG_DATABASE`). */
  WRONG_DATABASE: 10,
});

/** Conditions of the CLI itself (the library's are `WalguardErrorCode`s). */
export type CliErrorCode = 'USAGE' | 'NOT_FOUND' | 'ABORTED' | 'PROBLEM';

/** An error of the CLI itself: a usage mistake, a missing file, a declined confirmation. */
export class CliError extends Error {
  /** Which condition; decides the exit code. */
  readonly code: CliErrorCode;
  /** Extra facts for `--json` output (never secrets). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: CliErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'CliError';
    this.code = code;
    this.details = details;
  }
}

const byWalguardCode: Partial<Record<WalguardErrorCode, number>> = {
  LOCKED: EXIT.LOCKED,
  WRONG_KEY: EXIT.WRONG_KEY,
  KEY_REQUIRED: EXIT.KEY_REQUIRED,
  NOT_ENCRYPTED: EXIT.NOT_ENCRYPTED,
  CORRUPT: EXIT.CORRUPT,
  INVALID_OPTION: EXIT.USAGE,
  WRONG_DATABASE: EXIT.WRONG_DATABASE,
};

/** The exit code for an error thrown by a command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return EXIT[error.code];
  if (isWalguardError(error)) return byWalguardCode[error.code] ?? EXIT.PROBLEM;
  return EXIT.PROBLEM;
}

/** The code reported for an error (`LOCKED`, `USAGE`, `SQLITE_…`, or `ERROR`). */
export function errorCodeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ERROR';
}
