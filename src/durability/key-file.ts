/**
 * Passphrase to encryption key: the key file `<db>.keyinfo`.
 *
 * Strategy: the database is encrypted (libSQL aes256cbc) with a key derived from the user's
 * passphrase by scrypt, which is memory-hard: each guess costs an attacker `128·N·r` bytes of
 * memory as well as time, which blunts GPU and ASIC guessing. The key file beside the
 * database holds only what derivation needs and nothing secret: the scrypt parameters, a
 * random 32-byte salt (so equal passphrases give unrelated keys, and no precomputed table
 * helps), and a key check value, `HMAC-SHA256(derivedKey, "walguard key check")`, so that a
 * wrong passphrase is reported as `WRONG_KEY` before SQLite is asked (SQLite can only say
 * `SQLITE_NOTADB`, which a damaged file says too). The check value lets an attacker test a
 * guess without the database, but no faster than against the database itself: each test
 * still costs one full scrypt. The key handed to libSQL is the hex of the derived bytes.
 *
 * Parameters: N=2^17, r=8, p=1 (128 MiB, the OWASP minimum for scrypt). The database file is
 * an offline target (a stolen laptop), and derivation runs once per open. Measured on this
 * machine (AMD EPYC, 2 cores, Node 20.20, median of 5): N=2^14 58 ms, 2^15 116 ms, 2^16
 * 233 ms, 2^17 518 ms. Stronger parameters can be chosen at creation; the file records them.
 * Accepted bounds (creation and reading, so a tampered file cannot make `deriveKey` allocate
 * without limit): N a power of two in [2^14, 2^20], r in [1, 32], p in [1, 16],
 * 128·N·r ≤ 1 GiB, a 32-byte key.
 *
 * Invariants:
 * - The passphrase and the key never appear in an error message, in `details`, or in the
 *   file. The passphrase is NFC-normalized first, so the same text typed on systems that
 *   compose accents differently derives the same key.
 * - The key file is created atomically, never half-written and never replaced: a temp file
 *   in the same directory (mode 0600) is written and fsynced, then hard-linked to its final
 *   name (which fails if a key file already exists: replacing it would make the database
 *   unreadable), the temp name is removed and the directory fsynced. Where hard links are not
 *   supported, an existence check then `rename` is used instead; the process lock makes
 *   that check race-free among walguard instances.
 * - The key file carries its own checksum, `checksum: "sha256:<hex>"` over every other field
 *   (in a fixed order), checked before anything else is read from it: a flipped bit in the
 *   salt, the check value or the scrypt parameters would otherwise still parse, derive a
 *   different key and read as `WRONG_KEY` ("the passphrase does not match"), sending the
 *   operator after the passphrase when the file is what is damaged. It is a checksum, not a
 *   MAC: without the passphrase nothing can be authenticated, and the check value already
 *   authenticates the derived key. Key files written before the checksum existed have none;
 *   they are read as before (damage to them can only read as `WRONG_KEY`), and never rewritten.
 * - A key file that does not parse, fails its checksum or is out of bounds is reported as
 *   `CORRUPT`, not
 *   `INVALID_OPTION`: it is a file walguard wrote as part of the database's durable state,
 *   now damaged or tampered with, and no option the caller could change would fix it.
 *   `details.path` names the key file, so the open sequence can tell it from a damaged
 *   database (the database itself may be intact: do not quarantine it for this).
 *
 * Not guaranteed: a tampered key file whose check value was recomputed cannot be detected
 * without the passphrase (that needs the passphrase, so it is not an attack); parameters
 * lowered by tampering surface as `WRONG_KEY`. A crash between the link and the removal of
 * the temp name can leave a `.<name>.keyinfo.*.tmp` file behind (harmless: it is a copy).
 * On platforms where directories cannot be fsynced (Windows), the rename's durability is
 * the filesystem's.
 */
import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { link, lstat, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { WalguardError } from '../errors.js';
import { fsyncDirectory } from './fs-sync.js';

/** scrypt's cost parameters, as stored in the key file. */
export interface ScryptParams {
  /** CPU/memory cost: a power of two in [2^14, 2^20]. */
  N: number;
  /** Block size in [1, 32]; memory is 128·N·r bytes. */
  r: number;
  /** Parallelization in [1, 16]. */
  p: number;
  /** Derived key length in bytes; 32 (AES-256). */
  keyLength: number;
}

/** The contents of `<db>.keyinfo`. Nothing in it is secret. */
export interface KeyInfo {
  /** Format version; 1. */
  version: 1;
  /** Key derivation function; 'scrypt'. */
  kdf: 'scrypt';
  /** scrypt's parameters for this database. */
  params: ScryptParams;
  /** Random salt, hex (32 bytes when created here; at least 16 accepted). */
  salt: string;
  /** Key check value: hex of HMAC-SHA256(derivedKey, "walguard key check"). */
  check: string;
  /** Unicode normalization applied to the passphrase before derivation; 'NFC'. */
  normalization: 'NFC';
  /** When the key file was created, ISO 8601 UTC. */
  createdAt: string;
  /**
   * `sha256:<hex>` of the other fields (see `keyInfoChecksum`); absent in key files written
   * before walguard checked them.
   */
  checksum?: string;
}

/** Options of `createKeyFile`. */
export interface CreateKeyFileOptions {
  /** scrypt parameters; each omitted one takes its value from `DEFAULT_SCRYPT_PARAMS`. */
  params?: Partial<ScryptParams>;
}

/** What `createKeyFile` made. */
export interface CreatedKeyFile {
  /** The key file's path, `<dbPath>.keyinfo`. */
  path: string;
  /** What was written to it. */
  keyInfo: KeyInfo;
  /** The derived key (hex) to pass as libsql's `encryptionKey`; saves a second derivation. */
  key: string;
}

/** scrypt parameters used when none are given; see the module header for the measurements. */
export const DEFAULT_SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({
  N: 2 ** 17,
  r: 8,
  p: 1,
  keyLength: 32,
});

/** The message authenticated by the key check value. */
const CHECK_LABEL = 'walguard key check';
/** Salt length for new key files, in bytes. */
const SALT_BYTES = 32;
/** A key file larger than this is not one of ours. */
const MAX_KEY_FILE_BYTES = 64 * 1024;
/** The most memory scrypt may be asked for by a key file, in bytes. */
const MAX_SCRYPT_MEMORY = 1024 * 1024 * 1024;

/** The key file path of a database: `<dbPath>.keyinfo`. */
export function keyFilePath(dbPath: string): string {
  return `${dbPath}.keyinfo`;
}

/**
 * Creates `<dbPath>.keyinfo` for a new encrypted database: draws a salt, derives the key from
 * `passphrase`, writes the file atomically with mode 0600, and returns it with the key. Fails
 * if a key file already exists (`INVALID_OPTION`): it is never replaced.
 */
export async function createKeyFile(
  dbPath: string,
  passphrase: string,
  options: CreateKeyFileOptions = {},
): Promise<CreatedKeyFile> {
  checkPassphrase(passphrase);
  const params: ScryptParams = { ...DEFAULT_SCRYPT_PARAMS, ...options.params };
  const problem = paramsProblem(params);
  if (problem !== undefined) {
    throw new WalguardError('INVALID_OPTION', `Invalid scrypt parameters: ${problem}`, {
      details: { params },
    });
  }
  const path = keyFilePath(dbPath);
  if (await exists(path)) throw existsError(path);
  const salt = randomBytes(SALT_BYTES);
  const derived = await runScrypt(passphrase, salt, params);
  const keyInfo: KeyInfo = {
    version: 1,
    kdf: 'scrypt',
    params,
    salt: salt.toString('hex'),
    check: checkValue(derived).toString('hex'),
    normalization: 'NFC',
    createdAt: new Date().toISOString(),
  };
  keyInfo.checksum = keyInfoChecksum(keyInfo);
  const key = derived.toString('hex');
  derived.fill(0);
  await writeNewFileAtomically(path, `${JSON.stringify(keyInfo, null, 2)}\n`);
  return { path, keyInfo, key };
}

/**
 * Reads and validates `<dbPath>.keyinfo`. Resolves `undefined` when there is no key file;
 * throws `CORRUPT` naming the path when it does not parse or is out of bounds, `IO_ERROR`
 * when it cannot be read.
 */
export async function readKeyFile(dbPath: string): Promise<KeyInfo | undefined> {
  const path = keyFilePath(dbPath);
  let text: string;
  try {
    const handle = await open(path, 'r');
    try {
      const { size } = await handle.stat();
      if (size > MAX_KEY_FILE_BYTES) throw corrupt(path, `it is ${size} bytes, too large`);
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof WalguardError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WalguardError(
      'IO_ERROR',
      `Cannot read key file ${path}: ${(error as Error).message}`,
      {
        cause: error,
        details: { path },
      },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw corrupt(path, 'it is not valid JSON');
  }
  return parseKeyInfo(parsed, path);
}

/**
 * Derives the key for `keyInfo` from `passphrase` and checks it against the key check value.
 * Resolves the hex key to pass as libsql's `encryptionKey`; rejects with `WRONG_KEY` when the
 * passphrase is not the one the key file was made with.
 */
export async function deriveKey(passphrase: string, keyInfo: KeyInfo): Promise<string> {
  checkPassphrase(passphrase);
  const problem = paramsProblem(keyInfo.params);
  if (problem !== undefined) {
    throw new WalguardError('INVALID_OPTION', `Invalid scrypt parameters: ${problem}`);
  }
  const derived = await runScrypt(passphrase, Buffer.from(keyInfo.salt, 'hex'), keyInfo.params);
  try {
    if (!checkValueMatches(derived, keyInfo)) {
      throw new WalguardError(
        'WRONG_KEY',
        'The passphrase does not match this database: it derives a key whose check value ' +
          'differs from the one in the key file',
      );
    }
    return derived.toString('hex');
  } finally {
    derived.fill(0);
  }
}

/** True when `key` (hex, as returned by `deriveKey`) matches `keyInfo`'s check value. */
export function verifyKey(key: string, keyInfo: KeyInfo): boolean {
  if (
    typeof key !== 'string' ||
    key.length !== keyInfo.params.keyLength * 2 ||
    !/^[0-9a-f]+$/i.test(key)
  ) {
    return false;
  }
  const bytes = Buffer.from(key, 'hex');
  try {
    return checkValueMatches(bytes, keyInfo);
  } finally {
    bytes.fill(0);
  }
}

/** Constant-time comparison of a derived key's check value with the stored one. */
function checkValueMatches(derived: Buffer, keyInfo: KeyInfo): boolean {
  const expected = Buffer.from(keyInfo.check, 'hex');
  const actual = checkValue(derived);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function checkValue(derived: Buffer): Buffer {
  return createHmac('sha256', derived).update(CHECK_LABEL).digest();
}

function runScrypt(passphrase: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const { N, r, p, keyLength } = params;
  return new Promise((resolve, reject) => {
    // maxmem: Node refuses when 128·N·r exceeds it (32 MiB by default); allow twice that.
    scrypt(
      passphrase.normalize('NFC'),
      salt,
      keyLength,
      { N, r, p, maxmem: 256 * N * r },
      (error, key) => {
        if (error === null) resolve(key);
        // The error names parameters, never the passphrase; wrapped all the same.
        else reject(new WalguardError('INVALID_OPTION', `scrypt failed: ${error.message}`));
      },
    );
  });
}

function checkPassphrase(passphrase: unknown): asserts passphrase is string {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    // Describe the value by its type and length only: it is a secret.
    const got =
      typeof passphrase === 'string' ? 'an empty string' : `a value of type ${typeof passphrase}`;
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected \`passphrase\` to be a non-empty string, got ${got}`,
    );
  }
}

/** A sentence saying what is wrong with scrypt parameters, or undefined when they are fine. */
function paramsProblem(params: unknown): string | undefined {
  if (typeof params !== 'object' || params === null) return 'expected an object';
  const { N, r, p, keyLength } = params as Record<string, unknown>;
  const isInt = (v: unknown, min: number, max: number): v is number =>
    Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
  if (!isInt(N, 2 ** 14, 2 ** 20) || (N & (N - 1)) !== 0) {
    return `expected \`N\` to be a power of two from 2^14 to 2^20, got \`${String(N)}\``;
  }
  if (!isInt(r, 1, 32)) return `expected \`r\` to be an integer from 1 to 32, got \`${String(r)}\``;
  if (!isInt(p, 1, 16)) return `expected \`p\` to be an integer from 1 to 16, got \`${String(p)}\``;
  if (keyLength !== 32) return `expected \`keyLength\` to be 32, got \`${String(keyLength)}\``;
  if (128 * N * r > MAX_SCRYPT_MEMORY) return `128·N·r exceeds ${MAX_SCRYPT_MEMORY} bytes`;
  return undefined;
}

/** Validates parsed JSON as a KeyInfo; throws CORRUPT naming `path` and the first problem. */
function parseKeyInfo(value: unknown, path: string): KeyInfo {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw corrupt(path, 'it is not a JSON object');
  }
  const v = value as Record<string, unknown>;
  if (v.checksum !== undefined) {
    const expected = keyInfoChecksum(v);
    if (v.checksum !== expected) {
      throw corrupt(
        path,
        `its checksum does not match its contents (a changed bit in the salt, the check value or the parameters?), so it cannot be trusted to derive the key; the passphrase was not tried. Copy the key file back from a backup (each backup keeps one beside it: <backup>.keyinfo)`,
      );
    }
  }
  if (v.version !== 1) throw corrupt(path, `unsupported version \`${String(v.version)}\``);
  if (v.kdf !== 'scrypt') throw corrupt(path, `unsupported kdf \`${String(v.kdf)}\``);
  const problem = paramsProblem(v.params);
  if (problem !== undefined) throw corrupt(path, `bad scrypt parameters: ${problem}`);
  if (typeof v.salt !== 'string' || !/^(?:[0-9a-f]{2}){16,128}$/.test(v.salt)) {
    throw corrupt(path, '`salt` is not 16 to 128 bytes of lowercase hex');
  }
  if (typeof v.check !== 'string' || !/^[0-9a-f]{64}$/.test(v.check)) {
    throw corrupt(path, '`check` is not 32 bytes of lowercase hex');
  }
  if (v.normalization !== 'NFC') {
    throw corrupt(path, `unsupported normalization \`${String(v.normalization)}\``);
  }
  if (typeof v.createdAt !== 'string' || Number.isNaN(Date.parse(v.createdAt))) {
    throw corrupt(path, '`createdAt` is not a date');
  }
  const { N, r, p, keyLength } = v.params as ScryptParams;
  const info: KeyInfo = {
    version: 1,
    kdf: 'scrypt',
    params: { N, r, p, keyLength },
    salt: v.salt,
    check: v.check,
    normalization: 'NFC',
    createdAt: v.createdAt,
  };
  if (typeof v.checksum === 'string') info.checksum = v.checksum;
  return info;
}

/**
 * The checksum of a key file's fields: `sha256:` and the hex SHA-256 of the JSON array of
 * version, kdf, N, r, p, keyLength, salt, check, normalization and createdAt, in that order
 * (an array, so that the digest does not depend on the order of keys in the file).
 */
export function keyInfoChecksum(info: object): string {
  const v = info as Record<string, unknown>;
  const params = (v.params ?? {}) as Record<string, unknown>;
  const fields = [
    v.version,
    v.kdf,
    params.N,
    params.r,
    params.p,
    params.keyLength,
    v.salt,
    v.check,
    v.normalization,
    v.createdAt,
  ];
  return `sha256:${createHash('sha256').update(JSON.stringify(fields)).digest('hex')}`;
}

/** Writes a new file that must not exist yet: temp + fsync + link (or rename) + fsync dir. */
async function writeNewFileAtomically(path: string, content: string): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let tempExists = false;
  try {
    const handle = await open(temp, 'wx', 0o600);
    tempExists = true;
    try {
      await handle.chmod(0o600); // explicit: the open mode is filtered by the umask
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(temp, path);
      // The temp name is now a second name of the key file: drop it before the dir fsync
      // (best effort: the key file is complete either way).
      await rm(temp, { force: true }).catch(() => {});
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw existsError(path);
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') {
        throw error;
      }
      // No hard links on this filesystem: check, then rename (see the module header).
      if (await exists(path)) throw existsError(path);
      await rename(temp, path);
    }
    tempExists = false;
    await fsyncDirectory(dir);
  } catch (error) {
    if (tempExists) await rm(temp, { force: true }).catch(() => {});
    if (error instanceof WalguardError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new WalguardError(
      code === 'ENOSPC' ? 'DISK_FULL' : 'IO_ERROR',
      `Cannot write key file ${path}: ${(error as Error).message}`,
      { cause: error, details: { path } },
    );
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new WalguardError('IO_ERROR', `Cannot check ${path}: ${(error as Error).message}`, {
      cause: error,
      details: { path },
    });
  }
}

function corrupt(path: string, reason: string): WalguardError {
  return new WalguardError('CORRUPT', `Key file ${path} is damaged: ${reason}`, {
    details: { path, reason },
  });
}

function existsError(path: string): WalguardError {
  return new WalguardError(
    'INVALID_OPTION',
    `A key file already exists at ${path}; it is never replaced, because the database ` +
      'encrypted with its key would become unreadable. Open the database with its passphrase.',
    { details: { path } },
  );
}
