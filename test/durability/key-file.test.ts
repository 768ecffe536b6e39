import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createKeyFile,
  DEFAULT_SCRYPT_PARAMS,
  deriveKey,
  keyFilePath,
  keyInfoChecksum,
  readKeyFile,
  verifyKey,
} from '../../src/durability/key-file.js';
import type { WalguardError } from '../../src/errors.js';
import { rejection } from '../helpers.js';

/** The cheapest accepted parameters, to keep the tests fast. */
const FAST = { N: 2 ** 14 };
const PASSPHRASE = 'correct horse battery staple';

let dir: string;
let dbPath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'walguard-key-'));
  dbPath = join(dir, 'app.db');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Asserts that no secret leaked into an error's message, details or cause. */
function expectNoSecrets(error: WalguardError, ...secrets: string[]): void {
  const text = JSON.stringify({
    message: error.message,
    details: error.details,
    cause: String(error.cause),
    stack: error.stack,
  });
  for (const secret of secrets) expect(text).not.toContain(secret);
}

/**
 * Rewrites the key file with some fields replaced (undefined removes a field), with a checksum
 * that matches, as a tool writing a consistent file would (unless the patch sets `checksum`).
 */
async function rewrite(patch: Record<string, unknown>): Promise<void> {
  const info = JSON.parse(await readFile(keyFilePath(dbPath), 'utf8')) as Record<string, unknown>;
  const next: Record<string, unknown> = { ...info, ...patch };
  if (!('checksum' in patch) && next.checksum !== undefined) next.checksum = keyInfoChecksum(next);
  await writeFile(keyFilePath(dbPath), JSON.stringify(next));
}

describe('key files', () => {
  it('round-trips: the key read back opens the database that the created key encrypted', async () => {
    const created = await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    expect(created.path).toBe(`${dbPath}.keyinfo`);
    expect(created.key).toMatch(/^[0-9a-f]{64}$/);

    const writer = new Database(dbPath, { encryptionKey: created.key } as object);
    writer.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')");
    writer.close();

    const keyInfo = await readKeyFile(dbPath);
    expect(keyInfo).toEqual(created.keyInfo);
    expect(keyInfo).toMatchObject({ version: 1, kdf: 'scrypt', normalization: 'NFC' });
    expect(keyInfo!.salt).toMatch(/^[0-9a-f]{64}$/);
    const key = await deriveKey(PASSPHRASE, keyInfo!);
    expect(key).toBe(created.key);
    expect(verifyKey(key, keyInfo!)).toBe(true);

    const reader = new Database(dbPath, { encryptionKey: key } as object);
    const row = reader.prepare('SELECT v FROM t').raw(true).get() as unknown[];
    expect(row[0]).toBe('kept');
  });

  it('uses N=2^17, r=8, p=1 by default', async () => {
    const started = performance.now();
    const created = await createKeyFile(dbPath, PASSPHRASE);
    const ms = performance.now() - started;
    expect(created.keyInfo.params).toEqual({ N: 2 ** 17, r: 8, p: 1, keyLength: 32 });
    expect(DEFAULT_SCRYPT_PARAMS).toEqual(created.keyInfo.params);
    expect(Object.isFrozen(DEFAULT_SCRYPT_PARAMS)).toBe(true);
    // Memory-hard enough to take measurable time, not so slow that opening is painful.
    expect(ms).toBeGreaterThan(20);
    expect(ms).toBeLessThan(10_000);
  });

  it('draws a fresh salt: the same passphrase gives different keys for two databases', async () => {
    const a = await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    const b = await createKeyFile(join(dir, 'other.db'), PASSPHRASE, { params: FAST });
    expect(a.keyInfo.salt).not.toBe(b.keyInfo.salt);
    expect(a.key).not.toBe(b.key);
  });

  it('rejects a wrong passphrase with WRONG_KEY, leaking neither passphrase nor key', async () => {
    const created = await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    const keyInfo = (await readKeyFile(dbPath))!;
    const error = await rejection(deriveKey('Correct horse battery staple', keyInfo));
    expect(error.code).toBe('WRONG_KEY');
    expectNoSecrets(error, PASSPHRASE, 'Correct horse', created.key);
  });

  it('normalizes the passphrase: composed and decomposed accents derive one key', async () => {
    const composed = 'caf\u00e9 cr\u00e8me';
    const decomposed = 'cafe\u0301 cre\u0300me';
    expect(composed).not.toBe(decomposed);
    const created = await createKeyFile(dbPath, composed, { params: FAST });
    expect(await deriveKey(decomposed, created.keyInfo)).toBe(created.key);
  });

  it('verifies keys in constant time and answers false for anything malformed', async () => {
    const { key, keyInfo } = await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    expect(verifyKey(key, keyInfo)).toBe(true);
    expect(verifyKey(key.toUpperCase(), keyInfo)).toBe(true);
    const flipped = (key[0] === '0' ? '1' : '0') + key.slice(1);
    expect(verifyKey(flipped, keyInfo)).toBe(false);
    expect(verifyKey(key.slice(2), keyInfo)).toBe(false);
    expect(verifyKey(`${key.slice(0, 62)}zz`, keyInfo)).toBe(false);
    expect(verifyKey('', keyInfo)).toBe(false);
  });

  it('writes the key file with mode 0600, whatever the umask', async () => {
    const previous = process.umask(0);
    try {
      await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    } finally {
      process.umask(previous);
    }
    expect((await stat(keyFilePath(dbPath))).mode & 0o777).toBe(0o600);
  });

  it('leaves no temp file behind, after success and after a refused second create', async () => {
    const first = await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    expect(await readdir(dir)).toEqual(['app.db.keyinfo']);
    const before = await readFile(keyFilePath(dbPath), 'utf8');

    const error = await rejection(createKeyFile(dbPath, 'another passphrase', { params: FAST }));
    expect(error.code).toBe('INVALID_OPTION');
    expect(error.message).toContain(keyFilePath(dbPath));
    expectNoSecrets(error, 'another passphrase');
    expect(await readdir(dir)).toEqual(['app.db.keyinfo']);
    expect(await readFile(keyFilePath(dbPath), 'utf8')).toBe(before);
    expect(JSON.parse(before).salt).toBe(first.keyInfo.salt);
    expect(before).not.toContain(first.key);
    expect(before).not.toContain(PASSPHRASE);
  });

  it('resolves undefined when there is no key file', async () => {
    expect(await readKeyFile(dbPath)).toBeUndefined();
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['an unknown version', { version: 2 }, /unsupported version `2`/],
    ['another kdf', { kdf: 'pbkdf2' }, /unsupported kdf/],
    [
      'a huge N (memory exhaustion)',
      { params: { N: 2 ** 30, r: 8, p: 1, keyLength: 32 } },
      /power of two/,
    ],
    ['an N that is not a power of two', { params: { N: 20000, r: 8, p: 1, keyLength: 32 } }, /`N`/],
    ['a 16-byte key', { params: { N: 2 ** 14, r: 8, p: 1, keyLength: 16 } }, /`keyLength`/],
    ['a missing salt', { salt: undefined }, /salt/],
    ['a short salt', { salt: 'abcd' }, /salt/],
    ['a non-hex check value', { check: 'x'.repeat(64) }, /check/],
    ['a bad date', { createdAt: 'yesterday' }, /createdAt/],
  ])('reports a key file with %s as CORRUPT naming its path', async (_name, patch, reason) => {
    await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    await rewrite(patch);
    const error = await rejection(readKeyFile(dbPath));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toContain(keyFilePath(dbPath));
    expect(error.message).toMatch(reason);
    expect(error.details?.path).toBe(keyFilePath(dbPath));
  });

  it('reports a key file holding a JSON array as CORRUPT', async () => {
    await writeFile(keyFilePath(dbPath), '[1, 2]');
    const error = await rejection(readKeyFile(dbPath));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/not a JSON object/);
  });

  it('reports a truncated key file (invalid JSON) as CORRUPT', async () => {
    await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    const text = await readFile(keyFilePath(dbPath), 'utf8');
    await writeFile(keyFilePath(dbPath), text.slice(0, text.length / 2));
    const error = await rejection(readKeyFile(dbPath));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/not valid JSON/);
  });

  it('a bit flip in the salt, the check value or the scrypt parameters is CORRUPT naming the key file, not WRONG_KEY', async () => {
    const { path, keyInfo } = await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    const original = await readFile(path);
    const text = original.toString('latin1');
    const spots = {
      salt: text.indexOf(keyInfo.salt) + 5,
      check: text.indexOf(keyInfo.check) + 9,
      r: text.indexOf('"r": 8') + 5,
    };
    for (const [field, at] of Object.entries(spots)) {
      const bytes = Buffer.from(original);
      // One bit: '8' <-> '9', 'a' <-> 'b', … (still valid hex, still a valid parameter).
      bytes[at] = bytes[at]! ^ 0x01;
      await writeFile(path, bytes);
      const error = await rejection(
        readKeyFile(dbPath).then((info) => deriveKey(PASSPHRASE, info!)),
      );
      expect(error.code, field).toBe('CORRUPT');
      expect(error.message, field).toContain(path);
      expect(error.message, field).toMatch(/checksum/);
      expect(error.details, field).toMatchObject({ path });
    }
    await writeFile(path, original);
    expect(await deriveKey(PASSPHRASE, (await readKeyFile(dbPath))!)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('reads a key file written before key files had a checksum as before (where tampering can only read as WRONG_KEY)', async () => {
    const { keyInfo: original } = await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    await rewrite({ checksum: undefined });
    expect(JSON.parse(await readFile(keyFilePath(dbPath), 'utf8'))).not.toHaveProperty('checksum');
    const key = await deriveKey(PASSPHRASE, (await readKeyFile(dbPath))!);
    expect(key).toMatch(/^[0-9a-f]{64}$/);

    const flipped = original.salt.startsWith('00') ? 'ff' : '00';
    await rewrite({ salt: flipped + original.salt.slice(2) });
    const error = await rejection(deriveKey(PASSPHRASE, (await readKeyFile(dbPath))!));
    expect(error.code).toBe('WRONG_KEY');
  });

  it('an encrypted database whose key file took a bit flip fails to open with CORRUPT naming the key file', async () => {
    const { openDatabase } = await import('../../src/index.js');
    await createKeyFile(dbPath, PASSPHRASE, { params: FAST });
    const db = await openDatabase({
      path: dbPath,
      logger: false,
      handleSignals: false,
      encryption: { passphrase: PASSPHRASE },
    });
    await db.close();
    const bytes = await readFile(keyFilePath(dbPath));
    const at = bytes.indexOf('"salt": "') + 12;
    bytes[at] = bytes[at]! ^ 0x01;
    await writeFile(keyFilePath(dbPath), bytes);
    const error = await rejection(
      openDatabase({
        path: dbPath,
        logger: false,
        handleSignals: false,
        encryption: { passphrase: PASSPHRASE },
      }),
    );
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toContain(keyFilePath(dbPath));
  });

  it('rejects an empty passphrase and weak parameters with INVALID_OPTION', async () => {
    const empty = await rejection(createKeyFile(dbPath, ''));
    expect(empty.code).toBe('INVALID_OPTION');
    expect(empty.message).toMatch(/non-empty string, got an empty string/);
    const weak = await rejection(createKeyFile(dbPath, PASSPHRASE, { params: { N: 1024 } }));
    expect(weak.code).toBe('INVALID_OPTION');
    expect(weak.message).toMatch(/`N`.*got `1024`/);
    expect(await readdir(dir)).toEqual([]);
  });
});
