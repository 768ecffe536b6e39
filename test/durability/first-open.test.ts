/**
 * A crash (or a full disk) during a new database's first open must not brick it (issue 10,
 * defect 3): a 0-byte database with no WAL content opens as a new database; one whose WAL
 * holds commits is quarantined, never opened as new (SQLite would delete that WAL); ENOSPC
 * at first open is DISK_FULL and leaves nothing that blocks the next open.
 */
import crypto, { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import Database from 'libsql';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeyFile } from '../../src/durability/key-file.js';
import { openDatabase } from '../../src/index.js';
import { readFresh, rejection, tempDir } from '../helpers.js';
import { mountTmpfs, runRecoveryChild, type SmallDisk, tmpfsUnavailable } from './small-disk.js';

const open = (file: string, passphrase?: string) =>
  openDatabase<{ t: { id: number; body: string } }>({
    path: file,
    logger: false,
    handleSignals: false,
    ...(passphrase === undefined ? {} : { encryption: { passphrase } }),
  });

async function writeAndClose(file: string, passphrase?: string): Promise<void> {
  const db = await open(file, passphrase);
  await sql`create table if not exists t (id integer primary key, body text not null)`.execute(
    db.kysely,
  );
  await db.kysely.insertInto('t').values({ id: 1, body: 'first' }).execute();
  await db.close();
}

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

const disks: SmallDisk[] = [];
afterEach(() => {
  for (const disk of disks.splice(0)) disk.unmount();
});

describe('a 0-byte database with no WAL content', () => {
  it('opens as a new database (plaintext)', async () => {
    const file = path.join(tempDir(), 'new.db');
    fs.writeFileSync(file, '');
    await writeAndClose(file);
    expect(readFresh(file, 'select body from t')).toEqual([{ body: 'first' }]);
  });

  it('opens as a new database with a passphrase, whether the crash left its key file or not', async () => {
    const passphrase = 'first open, second try';
    for (const keepKeyFile of [true, false]) {
      const file = path.join(tempDir(), 'enc.db');
      // A first open that died before the database had a page, after making the key file
      // (with cheap scrypt parameters, to keep the test fast) or before.
      fs.writeFileSync(file, '');
      if (keepKeyFile) await createKeyFile(file, passphrase, { params: { N: 2 ** 14 } });
      await writeAndClose(file, passphrase);
      expect(fs.existsSync(`${file}.keyinfo`)).toBe(true);
      const db = await open(file, passphrase);
      expect(await db.kysely.selectFrom('t').select('body').execute()).toEqual([{ body: 'first' }]);
      await db.close();
    }
  });

  it('with an empty -wal beside it still opens as new', async () => {
    const file = path.join(tempDir(), 'new.db');
    fs.writeFileSync(file, '');
    fs.writeFileSync(`${file}-wal`, '');
    await writeAndClose(file);
    expect(readFresh(file, 'select count(*) as n from t')).toEqual([{ n: 1 }]);
  });
});

describe('a first page that never reached the disk whole', () => {
  it('a database file of zeros (page 1 torn at its first sector: power-loss harness, first-open row) opens as new; any other garbage stays CORRUPT', async () => {
    for (const passphrase of [undefined, 'torn first page']) {
      const file = path.join(tempDir(), 'torn.db');
      fs.writeFileSync(file, Buffer.alloc(4096));
      if (passphrase !== undefined) {
        await createKeyFile(file, passphrase, { params: { N: 2 ** 14 } });
      }
      await writeAndClose(file, passphrase);
      const db = await open(file, passphrase);
      expect(await db.kysely.selectFrom('t').select('body').execute()).toEqual([{ body: 'first' }]);
      await db.close();
    }
    // One non-zero byte in the header sector: not a page whose header never reached the disk,
    // so not walguard's to call new.
    const garbage = path.join(tempDir(), 'garbage.db');
    const bytes = Buffer.alloc(4096);
    bytes[300] = 1;
    fs.writeFileSync(garbage, bytes);
    expect((await rejection(open(garbage))).code).toBe('CORRUPT');
    expect(fs.readFileSync(garbage).equals(bytes)).toBe(true);
    // Zeros larger than one page (64 KiB at most) are a database that lost its contents.
    const big = path.join(tempDir(), 'big.db');
    fs.writeFileSync(big, Buffer.alloc(128 * 1024));
    expect((await rejection(open(big))).code).toBe('CORRUPT');
    expect(fs.statSync(big).size).toBe(128 * 1024);
  });
});

describe('a first page whose header sector never reached the disk (encrypted)', () => {
  it('one page whose first 512 bytes are zeros (the rest ciphertext: power-loss harness, first-open-encrypted row) is moved to quarantine, and the open makes a new database', async () => {
    const key = 'b2'.repeat(32);
    const dir = tempDir();
    const file = path.join(dir, 'torn.db');
    const bytes = Buffer.alloc(4096);
    crypto.randomFillSync(bytes, 512);
    fs.writeFileSync(file, bytes);
    const openKeyed = () =>
      openDatabase<{ t: { id: number; body: string } }>({
        path: file,
        logger: false,
        handleSignals: false,
        encryption: { key },
      });
    const db = await openKeyed();
    await sql`create table t (id integer primary key, body text not null)`.execute(db.kysely);
    await db.kysely.insertInto('t').values({ id: 1, body: 'first' }).execute();
    await db.close();
    // The torn page is kept, byte for byte, and its quarantine does not block later opens.
    const kept = fs.readdirSync(dir).filter((n) => n.startsWith('torn.db.corrupted.'));
    expect(kept).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, kept[0]!, 'torn.db')).equals(bytes)).toBe(true);
    const again = await openKeyed();
    expect(await again.kysely.selectFrom('t').select('body').execute()).toEqual([
      { body: 'first' },
    ]);
    await again.close();
    // More than one page with a zeroed first sector is a damaged database: CORRUPT, untouched.
    const big = path.join(tempDir(), 'big.db');
    const bigBytes = Buffer.alloc(8192);
    crypto.randomFillSync(bigBytes, 512);
    fs.writeFileSync(big, bigBytes);
    expect((await rejection(open(big))).code).toBe('CORRUPT');
    expect(fs.readFileSync(big).equals(bigBytes)).toBe(true);
  });
});

describe('a 0-byte database whose WAL holds commits', () => {
  it('is not opened as new: CORRUPT, and the database and its WAL are quarantined byte for byte (SQLite would delete that WAL)', async () => {
    const dir = tempDir();
    const model = path.join(dir, 'model.db');
    const writer = new Database(model);
    writer.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0');
    writer.exec("CREATE TABLE t (x); INSERT INTO t VALUES ('in the wal')");
    const file = path.join(dir, 'app.db');
    fs.copyFileSync(`${model}-wal`, `${file}-wal`);
    writer.close();
    fs.writeFileSync(file, '');
    const walHash = sha(`${file}-wal`);

    const error = await rejection(open(file));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/WAL/);
    const quarantine = error.details?.quarantineDir as string;
    expect(quarantine).toContain('app.db.corrupted.');
    expect(sha(path.join(quarantine, 'app.db-wal'))).toBe(walHash);
    expect(fs.statSync(path.join(quarantine, 'app.db')).size).toBe(0);
    // And the next open still refuses rather than creating an empty database in its place.
    expect((await rejection(open(file))).code).toBe('CORRUPT');
    expect(fs.existsSync(file)).toBe(false);
  });
});

/** Opens, writes and closes once space is back; a row already there (the first try got it in) is fine. */
async function reopenAfterSpaceReturns(file: string, passphrase?: string): Promise<void> {
  await writeAndClose(file, passphrase).catch((error: { code?: string }) => {
    if (error.code !== 'SQLITE_CONSTRAINT_PRIMARYKEY') throw error;
  });
  const db = await open(file, passphrase);
  expect(await db.kysely.selectFrom('t').select('body').execute()).toEqual([{ body: 'first' }]);
  await db.close();
}

describe('ENOSPC during the first open', () => {
  it.skipIf(tmpfsUnavailable !== undefined)(
    'on a tmpfs with too little room reports DISK_FULL at whatever step it strikes, and once space is back the next open succeeds',
    async () => {
      const codes = new Set<string>();
      const cases: [number, string | undefined][] = [
        [0, undefined],
        [6 * 1024, undefined],
        [20 * 1024, undefined],
        [40 * 1024, undefined],
        [0, 'full disk'],
        [12 * 1024, 'full disk'],
      ];
      for (const [free, passphrase] of cases) {
        const disk = mountTmpfs(1024 * 1024);
        disks.push(disk);
        const file = path.join(disk.dir, 'app.db');
        disk.leaveFree(free);
        try {
          await writeAndClose(file, passphrase);
          codes.add('ok');
        } catch (error) {
          const code = (error as { code?: string }).code ?? 'none';
          codes.add(code);
          expect(code, `${free} bytes free: ${String(error)}`).toBe('DISK_FULL');
        }
        disk.free();
        await reopenAfterSpaceReturns(file, passphrase);
      }
      expect(codes.has('DISK_FULL')).toBe(true);
    },
    180_000,
  );

  it('through the shim (ENOSPC past a byte budget) reports DISK_FULL, and the next open succeeds', async () => {
    const codes: string[] = [];
    const cases: [number, string | undefined][] = [
      [0, undefined],
      [3000, undefined],
      [9000, undefined],
      [200, 'full disk'],
    ];
    for (const [budget, passphrase] of cases) {
      const dir = tempDir();
      const file = path.join(dir, 'app.db');
      const outcome = runRecoveryChild(
        'open',
        { path: file, ...(passphrase === undefined ? {} : { passphrase }) },
        { dir, enospcAfterBytes: budget },
      );
      codes.push(outcome.ok ? 'ok' : String(outcome.code));
      if (!outcome.ok) {
        expect(outcome.code, `budget ${budget}: ${outcome.message}`).toBe('DISK_FULL');
      }
      // Space is back (no shim in this process): the next open succeeds.
      await reopenAfterSpaceReturns(file, passphrase);
    }
    expect(codes).toContain('DISK_FULL');
  }, 180_000);
});
