/**
 * The open sequence's decisions, in order: lock → inspect the file → the key → (connections,
 * settings: `Walguard.open`) → integrity check → (migrations) → ready.
 *
 * Strategy: decide as much as possible from the file's header before SQLite touches it, so
 * that every failure gets its own error code and a sentence instead of SQLite's single
 * `SQLITE_NOTADB`, and so that nothing is ever written to a file walguard should not open
 * (a plaintext file opened with a key is refused before any connection exists).
 *
 * Invariants:
 * - The file is inspected before any connection of this process opens it (see
 *   `file-inspect.ts`: closing a descriptor would drop this process's SQLite locks).
 * - The key and passphrase never appear in a log line or an error message.
 * - A truncated file is reported as `CORRUPT`. A zero-length file is a database whose first
 *   open died before SQLite wrote its first page (a crash, a full disk): SQLite writes page 1
 *   when it switches to WAL mode, before any transaction, so nothing acknowledged can be in
 *   it — it opens as a new database, unless its `-wal` holds commits (`open-database.ts`
 *   quarantines that case: SQLite would delete such a WAL) or an unfinished restore left its
 *   files in quarantine.
 */
import { WalguardError } from '../errors.js';
import type { ResolvedOptions } from '../options.js';
import type { DatabaseFileInfo } from './file-inspect.js';
import { createKeyFile, deriveKey, keyFilePath, readKeyFile } from './key-file.js';

/** The key to open the database with, and how sure we are of it. */
export interface ResolvedKey {
  /** The libSQL `encryptionKey`, or undefined for a plaintext database. */
  key: string | undefined;
  /** True when the key was checked against the key file's check value (passphrase). */
  verified: boolean;
}

/**
 * Fails early, from the header alone, where the file cannot be what the options say. A missing
 * or empty file passes: it is a new database (the caller checks its WAL first).
 */
export function checkFileAgainstOptions(file: DatabaseFileInfo, options: ResolvedOptions): void {
  const where = options.path;
  if (file.kind === 'too-short') {
    throw new WalguardError(
      'CORRUPT',
      `${where} is ${file.size} bytes, shorter than a database header: it was truncated or is not a database. Restore a backup`,
      { details: { path: where, kind: file.kind, size: file.size } },
    );
  }
  const encrypted = options.encryption !== undefined;
  if (file.kind === 'plaintext' && encrypted) {
    throw new WalguardError(
      'NOT_ENCRYPTED',
      `${where} is a plaintext SQLite database, but an encryption key or passphrase was given; nothing was written to it. Open it without \`encryption\`, or export it into a new encrypted database`,
      { details: { path: where } },
    );
  }
  if (file.kind === 'encrypted-or-garbage') {
    if (!file.likelyEncrypted) {
      throw new WalguardError(
        'CORRUPT',
        `${where} is not a SQLite database (no SQLite header, and not laid out like an encrypted libSQL file). Restore a backup`,
        { details: { path: where, kind: file.kind } },
      );
    }
    if (!encrypted) {
      throw new WalguardError(
        'KEY_REQUIRED',
        `${where} is encrypted; pass \`encryption: { passphrase }\` or \`encryption: { key }\` to open it`,
        { details: { path: where } },
      );
    }
  }
}

/**
 * Turns the encryption option into the key. For a new database (no file, or a 0-byte one)
 * without a key file, the key file is created, unless `create` is false (the CLI's read-only
 * commands). A new database whose key file exists (its first open died after making it) uses
 * that key file.
 */
export async function resolveKey(
  file: DatabaseFileInfo,
  options: ResolvedOptions,
  { create = true }: { create?: boolean } = {},
): Promise<ResolvedKey> {
  const encryption = options.encryption;
  if (encryption === undefined) return { key: undefined, verified: false };
  if ('key' in encryption) return { key: encryption.key, verified: false };
  const info = await readKeyFile(options.path);
  if (info === undefined) {
    if (!create || (file.kind !== 'missing' && file.kind !== 'empty')) {
      throw new WalguardError(
        'KEY_REQUIRED',
        `${options.path} is encrypted but its key file ${keyFilePath(options.path)} is missing: it holds the salt that turns the passphrase into the key. Restore the key file (each backup keeps a copy beside it)`,
        { details: { path: keyFilePath(options.path) } },
      );
    }
    const created = await createKeyFile(options.path, encryption.passphrase);
    return { key: created.key, verified: true };
  }
  return { key: await deriveKey(encryption.passphrase, info), verified: true };
}

/**
 * Explains an engine error raised while the first connection opened the file: SQLite says
 * `SQLITE_NOTADB` both for a wrong key and for a damaged file; walguard knows which when the
 * key was verified by the key file.
 */
export function explainOpenError(
  error: unknown,
  resolved: ResolvedKey,
  options: ResolvedOptions,
): unknown {
  const code = (error as { code?: string } | null)?.code ?? '';
  const where = options.path;
  if (code === 'SQLITE_NOTADB') {
    if (resolved.key === undefined) {
      return new WalguardError(
        'CORRUPT',
        `${where} is not a readable SQLite database (SQLITE_NOTADB). Restore a backup`,
        {
          cause: error,
          details: { path: where },
        },
      );
    }
    if (resolved.verified) {
      return new WalguardError(
        'CORRUPT',
        `${where} does not decrypt although the passphrase is right (it matches the key file's check value): the file is damaged. Restore a backup`,
        { cause: error, details: { path: where } },
      );
    }
    return new WalguardError(
      'WRONG_KEY',
      `The key does not open ${where} (or the file is damaged: with a raw key walguard cannot tell; a passphrase and key file can)`,
      { cause: error, details: { path: where } },
    );
  }
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_SHMSIZE') {
    return new WalguardError(
      'DISK_FULL',
      `Cannot open ${where}: the disk is full (${code === 'SQLITE_FULL' ? 'SQLite could not write' : 'SQLite could not grow the -shm file'}). Nothing acknowledged was lost; free space and open again`,
      { cause: error, details: { path: where, engineCode: code } },
    );
  }
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN') {
    return new WalguardError(
      'IO_ERROR',
      `Cannot open ${where}: the OS reported an error (${code}: ${(error as Error).message})`,
      { cause: error, details: { path: where, engineCode: code } },
    );
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new WalguardError(
      'CORRUPT',
      `${where} is damaged: ${(error as Error).message}. Restore a backup`,
      {
        cause: error,
        details: { path: where },
      },
    );
  }
  return error;
}
