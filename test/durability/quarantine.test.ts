import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  QUARANTINE_RECORD_NAME,
  type QuarantineRecord,
  quarantineDatabase,
} from '../../src/durability/quarantine.js';
import { rejection } from '../helpers.js';

const NOW = new Date('2026-11-25T18:01:02.345Z');
const STAMP = '20261125T180102Z';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'walguard-quarantine-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Makes a real database file plus sidecars of random bytes; returns each file's hash. */
async function makeDatabase(
  dbPath: string,
  sidecars: string[] = ['-wal', '-shm', '.keyinfo'],
): Promise<Map<string, string>> {
  const db = new Database(dbPath);
  db.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('still here')");
  db.close();
  const hashes = new Map<string, string>([['', sha(await readFile(dbPath))]]);
  for (const suffix of sidecars) {
    const bytes = randomBytes(1000 + Math.floor(Math.random() * 5000));
    await writeFile(dbPath + suffix, bytes);
    hashes.set(suffix, sha(bytes));
  }
  return hashes;
}

describe('quarantineDatabase', () => {
  it('moves the database and its sidecars byte for byte into a timestamped folder', async () => {
    const dbPath = join(dir, 'app.db');
    const hashes = await makeDatabase(dbPath);

    const result = await quarantineDatabase(dbPath, { reason: 'integrity_check failed', now: NOW });

    expect(result.dir).toBe(join(dir, `app.db.corrupted.${STAMP}`));
    expect(result.moved).toEqual(
      ['app.db-wal', 'app.db-shm', 'app.db', 'app.db.keyinfo'].map((n) => join(result.dir, n)),
    );
    for (const [suffix, hash] of hashes) {
      expect(sha(await readFile(join(result.dir, `app.db${suffix}`)))).toBe(hash);
    }
    expect(await readdir(dir)).toEqual([`app.db.corrupted.${STAMP}`]);
  });

  it('deletes nothing: every byte is accounted for, and the lock files stay put', async () => {
    const dbPath = join(dir, 'app.db');
    await makeDatabase(dbPath, ['-wal', '-shm', '-journal', '.keyinfo']);
    await writeFile(`${dbPath}.lock`, '');
    await writeFile(`${dbPath}.lock.pid`, '123\n');
    await writeFile(join(dir, 'unrelated.txt'), 'mine');
    const before = new Map<string, string>();
    for (const name of await readdir(dir)) before.set(name, sha(await readFile(join(dir, name))));

    const { dir: folder } = await quarantineDatabase(dbPath, { reason: 'test', now: NOW });

    const after = new Map<string, string>();
    for (const name of await readdir(dir)) {
      if (name !== basenameOf(folder)) after.set(name, sha(await readFile(join(dir, name))));
    }
    for (const name of await readdir(folder)) {
      if (name !== QUARANTINE_RECORD_NAME) after.set(name, sha(await readFile(join(folder, name))));
    }
    expect(after).toEqual(before);
    expect((await readdir(dir)).sort()).toEqual(
      ['app.db.lock', 'app.db.lock.pid', basenameOf(folder), 'unrelated.txt'].sort(),
    );
  });

  it('leaves a database that still opens from the quarantine folder', async () => {
    const dbPath = join(dir, 'app.db');
    await makeDatabase(dbPath, []);
    const { dir: folder } = await quarantineDatabase(dbPath, { reason: 'test', now: NOW });
    const db = new Database(join(folder, 'app.db'));
    expect((db.prepare('SELECT v FROM t').raw(true).get() as unknown[])[0]).toBe('still here');
  });

  it('records the reason, time, original path and sizes in the folder', async () => {
    const dbPath = join(dir, 'app.db');
    await makeDatabase(dbPath, ['-wal']);
    const { dir: folder } = await quarantineDatabase(dbPath, {
      reason: 'SQLITE_CORRUPT on open',
      now: NOW,
    });
    const record = JSON.parse(
      await readFile(join(folder, QUARANTINE_RECORD_NAME), 'utf8'),
    ) as QuarantineRecord;
    expect(record).toMatchObject({
      reason: 'SQLITE_CORRUPT on open',
      quarantinedAt: NOW.toISOString(),
      originalPath: dbPath,
      pid: process.pid,
    });
    expect(record.files.map((f) => f.name)).toEqual(['app.db-wal', 'app.db']);
    expect(record.files.every((f) => f.size > 0)).toBe(true);
  });

  it('gives a second quarantine in the same second its own folder', async () => {
    const dbPath = join(dir, 'app.db');
    const first = await makeDatabase(dbPath);
    const a = await quarantineDatabase(dbPath, { reason: 'first', now: NOW });
    const second = await makeDatabase(dbPath);
    const b = await quarantineDatabase(dbPath, { reason: 'second', now: NOW });
    const c = await (async () => {
      await makeDatabase(dbPath, []);
      return quarantineDatabase(dbPath, { reason: 'third', now: NOW });
    })();

    expect(a.dir).toBe(join(dir, `app.db.corrupted.${STAMP}`));
    expect(b.dir).toBe(join(dir, `app.db.corrupted.${STAMP}-2`));
    expect(c.dir).toBe(join(dir, `app.db.corrupted.${STAMP}-3`));
    expect(sha(await readFile(join(a.dir, 'app.db-wal')))).toBe(first.get('-wal'));
    expect(sha(await readFile(join(b.dir, 'app.db-wal')))).toBe(second.get('-wal'));
  });

  it('moves only the parts that exist', async () => {
    const dbPath = join(dir, 'app.db');
    await makeDatabase(dbPath, ['.keyinfo']);
    const { moved, dir: folder } = await quarantineDatabase(dbPath, { reason: 'test', now: NOW });
    expect(moved).toEqual([join(folder, 'app.db'), join(folder, 'app.db.keyinfo')]);
  });

  it('quarantines a -wal whose database file is already gone', async () => {
    const dbPath = join(dir, 'app.db');
    await writeFile(`${dbPath}-wal`, randomBytes(100));
    const { moved, dir: folder } = await quarantineDatabase(dbPath, { reason: 'test', now: NOW });
    expect(moved).toEqual([join(folder, 'app.db-wal')]);
  });

  it('follows a symlinked database path to the real file', async () => {
    await mkdir(join(dir, 'real'));
    await makeDatabase(join(dir, 'real', 'app.db'));
    await symlink(join(dir, 'real', 'app.db'), join(dir, 'link.db'));
    const { dir: folder } = await quarantineDatabase(join(dir, 'link.db'), {
      reason: 'test',
      now: NOW,
    });
    expect(folder).toBe(join(dir, 'real', `app.db.corrupted.${STAMP}`));
    expect((await readdir(folder)).sort()).toEqual(
      ['app.db', 'app.db-shm', 'app.db-wal', 'app.db.keyinfo', QUARANTINE_RECORD_NAME].sort(),
    );
  });

  it('fails with IO_ERROR and creates no folder when there is nothing to quarantine', async () => {
    const error = await rejection(quarantineDatabase(join(dir, 'none.db'), { reason: 'test' }));
    expect(error.code).toBe('IO_ERROR');
    expect(error.message).toMatch(/Nothing to quarantine/);
    expect(await readdir(dir)).toEqual([]);
  });

  it('rejects an empty reason with INVALID_OPTION', async () => {
    const dbPath = join(dir, 'app.db');
    await makeDatabase(dbPath, []);
    const error = await rejection(quarantineDatabase(dbPath, { reason: ' ' }));
    expect(error.code).toBe('INVALID_OPTION');
    expect(await readdir(dir)).toEqual(['app.db']);
  });

  it('moves everything back and fails with IO_ERROR when one move fails', async () => {
    // A real rename failure: the parent path is sized so that the last destination,
    // <folder>/<db>.keyinfo, exceeds PATH_MAX (4096) while every other path fits.
    const base = `${'d'.repeat(200)}.db`;
    const folderName = `${base}.corrupted.${STAMP}`;
    const keyinfoDestLength = (parent: number) =>
      parent + 1 + folderName.length + 1 + base.length + 8;
    let parent = dir;
    while (keyinfoDestLength(parent.length) < 4097) {
      const room = 4097 - keyinfoDestLength(parent.length) - 1;
      parent = join(parent, 'p'.repeat(Math.max(1, Math.min(200, room))));
    }
    // >= 4096 fails (with its NUL), and the -wal destination, 4 bytes shorter, still fits.
    expect(keyinfoDestLength(parent.length)).toBeGreaterThanOrEqual(4096);
    expect(keyinfoDestLength(parent.length) - 4).toBeLessThanOrEqual(4095);
    await mkdir(parent, { recursive: true });
    const dbPath = join(parent, base);
    // SQLite cannot open paths this long (512 bytes at most), so all four are raw bytes.
    const hashes = new Map<string, string>();
    for (const suffix of ['', '-wal', '-shm', '.keyinfo']) {
      const bytes = randomBytes(4096);
      await writeFile(dbPath + suffix, bytes);
      hashes.set(suffix, sha(bytes));
    }

    const error = await rejection(quarantineDatabase(dbPath, { reason: 'test', now: NOW }));
    expect(error.code).toBe('IO_ERROR');
    expect(error.message).toMatch(/ENAMETOOLONG/);
    // It failed on the last file, after three moves that had to be undone.
    expect(error.message).toMatch(/rename '[^']*\.keyinfo' ->/);
    expect(error.message).toMatch(/Every file was moved back.*nothing was deleted/);
    for (const [suffix, hash] of hashes) expect(sha(await readFile(dbPath + suffix))).toBe(hash);
    // The folder stays (never deleted), holding only the record.
    expect(await readdir(join(parent, folderName))).toEqual([QUARANTINE_RECORD_NAME]);
  });
});

function basenameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
