/**
 * Is this backup usable with this secret? The same decisions as the open sequence, applied to
 * a backup file: its header first (missing, truncated, plaintext given a key, encrypted
 * without one), then its key (a passphrase backup is unlocked with the key file kept beside
 * it), then `quick_check` in the SQLite child.
 */
import { inspectDatabaseFile } from '../durability/file-inspect.js';
import { deriveKey, keyFilePath, readKeyFile } from '../durability/key-file.js';
import { WalguardError } from '../errors.js';
import type { EncryptionOptions } from '../options.js';
import { CliError } from './exit-codes.js';
import { type CheckTaskResult, runSqlChild } from './sql-child.js';

/** The verdict on one backup. */
export interface BackupVerdict {
  /** True when it opens with the secret and passes `quick_check`. */
  ok: boolean;
  /** Why not, as an error with a code (`CORRUPT`, `WRONG_KEY`, `KEY_REQUIRED`, …). */
  error: WalguardError | CliError | undefined;
}

/** Derived keys by key-file content, so backups sharing a key file derive once. */
export type KeyCache = Map<string, Promise<string>>;

/** Verifies the backup at `file` (see the header). Never throws for a bad backup: it says so. */
export async function verifyBackupFile(
  file: string,
  encryption: EncryptionOptions | undefined,
  cache: KeyCache = new Map(),
): Promise<BackupVerdict> {
  try {
    await checkBackupFile(file, encryption, cache);
    return { ok: true, error: undefined };
  } catch (error) {
    if (error instanceof WalguardError || error instanceof CliError) return { ok: false, error };
    throw error;
  }
}

async function checkBackupFile(
  file: string,
  encryption: EncryptionOptions | undefined,
  cache: KeyCache,
): Promise<void> {
  const header = await inspectDatabaseFile(file);
  if (header.kind === 'missing') {
    throw new CliError('NOT_FOUND', `There is no backup at ${file}`, { path: file });
  }
  if (header.kind === 'empty' || header.kind === 'too-short') {
    throw new WalguardError('CORRUPT', `The backup ${file} is ${header.size} bytes: truncated`);
  }
  if (header.kind === 'plaintext' && encryption !== undefined) {
    throw new WalguardError(
      'NOT_ENCRYPTED',
      `The backup ${file} is a plaintext database, but a key or passphrase was given`,
    );
  }
  if (header.kind === 'encrypted-or-garbage') {
    if (!header.likelyEncrypted) {
      throw new WalguardError('CORRUPT', `The backup ${file} is not a SQLite database`);
    }
    if (encryption === undefined) {
      throw new WalguardError(
        'KEY_REQUIRED',
        `The backup ${file} is encrypted; give its passphrase or key`,
      );
    }
  }
  let key: string | undefined;
  let verified = false;
  if (encryption !== undefined && 'key' in encryption) key = encryption.key;
  if (encryption !== undefined && 'passphrase' in encryption) {
    const info = await readKeyFile(file);
    if (info === undefined) {
      throw new WalguardError(
        'KEY_REQUIRED',
        `The backup ${file} has no key file ${keyFilePath(file)} beside it: the passphrase cannot be turned into its key without the salt in it`,
      );
    }
    const id = `${info.salt}:${info.check}:${JSON.stringify(info.params)}`;
    let derived = cache.get(id);
    if (derived === undefined) {
      derived = deriveKey(encryption.passphrase, info);
      cache.set(id, derived);
      derived.catch(() => {});
    }
    key = await derived;
    verified = true;
  }
  let result: CheckTaskResult;
  try {
    result = await runSqlChild<CheckTaskResult>({ op: 'check', path: file, key, full: false });
  } catch (error) {
    const code = (error as { code?: string }).code ?? '';
    if (code === 'SQLITE_NOTADB' && key !== undefined && !verified) {
      throw new WalguardError(
        'WRONG_KEY',
        `The key does not open the backup ${file} (or it is damaged: with a raw key walguard cannot tell)`,
      );
    }
    if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) {
      throw new WalguardError(
        'CORRUPT',
        `The backup ${file} cannot be read: ${(error as Error).message}`,
      );
    }
    throw error;
  }
  if (result.messages.join() !== 'ok') {
    throw new WalguardError(
      'CORRUPT',
      `The backup ${file} failed its quick_check: ${result.messages.slice(0, 3).join('; ')}`,
    );
  }
}
