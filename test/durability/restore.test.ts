/**
 * Restore keeps the promise (issue 10, defects 1 and 8): a restore that fails leaves the
 * live files where they were, byte for byte, with DISK_FULL / IO_ERROR; and an open never
 * creates an empty database where a quarantine of the same path says a restore did not finish.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeyFile } from '../../src/durability/key-file.js';
import { QUARANTINE_RECORD_NAME } from '../../src/durability/quarantine.js';
import { openDatabase, restore, type WalguardOptions } from '../../src/index.js';
import { readFresh, rejection, tempDir } from '../helpers.js';
import { mountTmpfs, runRecoveryChild, type SmallDisk, tmpfsUnavailable } from './small-disk.js';

interface DB {
  notes: { id: number; body: string };
}

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/**
 * The hashes of every file in `dir` that holds data (not recursive, regular files only), by
 * name. Left out: `-shm` (an index SQLite rebuilds) and an empty `-wal`. After `close()` they
 * may still vanish on their own: libsql closes a connection whose statements are not yet
 * garbage-collected only when they are (sqlite3_close_v2), and SQLite's last close of a
 * checkpointed database deletes both — seen once in a full run, whether or not a restore ran.
 */
function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir).sort()) {
    const file = path.join(dir, name);
    const stat = fs.statSync(file);
    if (!stat.isFile() || name.startsWith('.') || name.endsWith('-shm')) continue;
    if (name.endsWith('-wal') && stat.size === 0) continue;
    out[name] = sha(file);
  }
  return out;
}

/** Writes `rows` notes (ids from `from`) through walguard and closes. */
async function seed(
  file: string,
  from: number,
  rows: number,
  extra: Partial<WalguardOptions> = {},
): Promise<void> {
  const db = await openDatabase<DB>({ path: file, logger: false, handleSignals: false, ...extra });
  await sql`create table if not exists notes (id integer primary key, body text not null)`.execute(
    db.kysely,
  );
  await db.write((k) =>
    Array.from({ length: rows }, (_, i) =>
      k.insertInto('notes').values({ id: from + i, body: `note-${from + i}-${'x'.repeat(400)}` }),
    ),
  );
  await db.close();
}

/** A database with a backup of its first 200 rows, and 300 more rows written after it. */
async function databaseWithBackup(
  file: string,
  backupDir: string,
  extra: Partial<WalguardOptions> = {},
) {
  const passphrase = (extra.encryption as { passphrase?: string } | undefined)?.passphrase;
  // Cheap scrypt parameters keep the test fast; every later open reads them from the file.
  if (passphrase !== undefined) await createKeyFile(file, passphrase, { params: { N: 2 ** 14 } });
  await seed(file, 0, 200, extra);
  const db = await openDatabase<DB>({
    path: file,
    logger: false,
    handleSignals: false,
    backup: { dir: backupDir },
    ...extra,
  });
  const backup = await db.backup();
  await db.close();
  await seed(file, 1000, 300, extra);
  return backup.path;
}

const disks: SmallDisk[] = [];
afterEach(() => {
  for (const disk of disks.splice(0)) disk.unmount();
});

describe('a restore that runs out of space', () => {
  it.skipIf(tmpfsUnavailable !== undefined)(
    'on a nearly full disk (tmpfs) rejects with DISK_FULL, leaves every live file byte-identical, and the next open sees the old data (plaintext and encrypted)',
    async () => {
      for (const passphrase of [undefined, 'restore on a full disk']) {
        const disk = mountTmpfs(4 * 1024 * 1024);
        disks.push(disk);
        const file = path.join(disk.dir, 'app.db');
        const backupDir = path.join(tempDir(), 'backups');
        const encryption = passphrase === undefined ? {} : { encryption: { passphrase } };
        const backupPath = await databaseWithBackup(file, backupDir, encryption);
        const before = hashes(disk.dir);
        disk.leaveFree(Math.floor(fs.statSync(backupPath).size / 2));

        const error = await rejection(restore({ path: file, backupPath, ...encryption }));
        expect(error.code).toBe('DISK_FULL');
        disk.free();
        // Nothing moved, nothing half-written left beside the database.
        expect(hashes(disk.dir)).toEqual(before);
        expect(fs.readdirSync(disk.dir).filter((n) => n.includes('corrupted'))).toEqual([]);

        const db = await openDatabase<DB>({
          path: file,
          logger: false,
          handleSignals: false,
          ...encryption,
        });
        const n = await db.kysely
          .selectFrom('notes')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        expect(Number(n.n)).toBe(500);
        await db.close();
        disk.unmount();
        disks.splice(disks.indexOf(disk), 1);
      }
    },
    120_000,
  );

  it('through the shim (ENOSPC past 2 kB written beside the database) rejects with DISK_FULL and changes no byte', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const backupPath = await databaseWithBackup(file, path.join(tempDir(), 'backups'));
    const before = hashes(dir);

    const outcome = runRecoveryChild(
      'restore',
      { path: file, backupPath },
      { dir, enospcAfterBytes: 2000 },
    );
    expect(outcome).toMatchObject({ ok: false, code: 'DISK_FULL' });
    expect(hashes(dir)).toEqual(before);
    expect(
      fs.readdirSync(dir).filter((n) => n.includes('corrupted') || n.includes('restore')),
    ).toEqual([]);
    expect(readFresh(file, 'select count(*) as n from notes')).toEqual([{ n: 500 }]);
  });

  it("onCorruption 'restore' through the shim: DISK_FULL, the damaged files stay where they were byte for byte, and with space back the open restores", async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const backupDir = path.join(tempDir(), 'backups');
    await databaseWithBackup(file, backupDir);
    const bytes = fs.readFileSync(file);
    const middle = Math.floor(bytes.length / 2 / 4096) * 4096;
    bytes.fill(0xa5, middle, middle + 4096 * 3);
    fs.writeFileSync(file, bytes);
    // The -shm, and an empty -wal, are SQLite's to remove when its last connection closes.
    const EMPTY = createHash('sha256').digest('hex');
    const data = () =>
      Object.fromEntries(
        Object.entries(hashes(dir)).filter(
          ([name, hash]) => !name.endsWith('-shm') && !(name.endsWith('-wal') && hash === EMPTY),
        ),
      );
    const before = data();
    expect(Object.keys(before)).toContain('app.db');

    const outcome = runRecoveryChild(
      'open',
      { path: file, onCorruption: 'restore', backupDir, rows: 0 },
      { dir, enospcAfterBytes: 2000 },
    );
    expect(outcome).toMatchObject({ ok: false, code: 'DISK_FULL' });
    // The damaged database is still at its path, unchanged; no quarantine, no temp copy.
    expect(data()).toEqual(before);
    expect(
      fs.readdirSync(dir).filter((n) => n.includes('corrupted') || n.includes('restore')),
    ).toEqual([]);

    const db = await openDatabase<DB>({
      path: file,
      logger: false,
      handleSignals: false,
      onCorruption: 'restore',
      backup: { dir: backupDir },
    });
    expect(db.stats().recovery).toMatchObject({
      quarantineDir: expect.stringContaining('app.db.corrupted.'),
    });
    await db.close();
    expect(readFresh(file, 'select count(*) as n from notes')).toEqual([{ n: 200 }]);
  });
});

describe('an unfinished restore', () => {
  it('an open that finds no database but a quarantine of the same path refuses with CORRUPT naming the folder, and creates nothing', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const backupPath = await databaseWithBackup(file, path.join(dir, 'backups'));
    // What a restore that moved the files away and then failed to copy left behind.
    const quarantine = path.join(dir, 'app.db.corrupted.20261125T180102Z');
    fs.mkdirSync(quarantine);
    fs.renameSync(file, path.join(quarantine, 'app.db'));
    fs.writeFileSync(
      path.join(quarantine, QUARANTINE_RECORD_NAME),
      JSON.stringify({
        reason: `replaced by a restore of ${backupPath}`,
        quarantinedAt: '2026-11-25T18:01:02.345Z',
        originalPath: file,
        pid: 1,
        files: [{ name: 'app.db', size: 1 }],
      }),
    );
    const listing = fs.readdirSync(dir).sort();

    const error = await rejection(
      openDatabase({ path: file, logger: false, handleSignals: false }),
    );
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toContain(quarantine);
    expect(error.details).toMatchObject({ quarantineDir: quarantine });
    expect(fs.readdirSync(dir).sort()).toEqual(listing);

    // A restore resolves it: the database is back, and opens.
    await restore({ path: file, backupPath });
    expect(readFresh(file, 'select count(*) as n from notes')).toEqual([{ n: 200 }]);
    const db = await openDatabase({ path: file, logger: false, handleSignals: false });
    await db.close();
  });

  it('an encrypted database whose restore failed is never re-created with a new key file and salt', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'enc.db');
    const encryption = { passphrase: 'never a second salt' };
    await databaseWithBackup(file, path.join(dir, 'backups'), { encryption });
    const keyFile = fs.readFileSync(`${file}.keyinfo`);
    const quarantine = path.join(dir, 'enc.db.corrupted.20261125T180102Z');
    fs.mkdirSync(quarantine);
    for (const name of ['enc.db', 'enc.db.keyinfo']) {
      fs.renameSync(path.join(dir, name), path.join(quarantine, name));
    }
    fs.writeFileSync(
      path.join(quarantine, QUARANTINE_RECORD_NAME),
      JSON.stringify({ reason: 'walguard restore', originalPath: file, files: [] }),
    );
    const error = await rejection(
      openDatabase({ path: file, logger: false, handleSignals: false, encryption }),
    );
    expect(error.code).toBe('CORRUPT');
    expect(fs.existsSync(`${file}.keyinfo`)).toBe(false);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readFileSync(path.join(quarantine, 'enc.db.keyinfo')).equals(keyFile)).toBe(true);
  });
});
