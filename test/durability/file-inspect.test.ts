import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspectDatabaseFile } from '../../src/durability/file-inspect.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'walguard-inspect-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Makes a real database with some rows; only exec() is used so close() releases it. */
function makeDatabase(
  name: string,
  options: { key?: string; wal?: boolean; pageSize?: number; rows?: number } = {},
): string {
  const path = join(dir, name);
  const db = new Database(
    path,
    options.key === undefined ? {} : ({ encryptionKey: options.key } as object),
  );
  if (options.pageSize !== undefined) db.exec(`PRAGMA page_size = ${options.pageSize}`);
  if (options.wal) db.exec('PRAGMA journal_mode = WAL');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)');
  db.exec(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${options.rows ?? 200})
     INSERT INTO t (body) SELECT randomblob(300) FROM n`,
  );
  if (options.wal) db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  db.close();
  return path;
}

describe('inspectDatabaseFile', () => {
  it('reports a missing file', async () => {
    const info = await inspectDatabaseFile(join(dir, 'nope.db'));
    expect(info).toMatchObject({ kind: 'missing', size: 0, pageSize: null, problems: [] });
  });

  it('reports a zero-length file as empty', async () => {
    await writeFile(join(dir, 'empty.db'), '');
    const info = await inspectDatabaseFile(join(dir, 'empty.db'));
    expect(info).toMatchObject({ kind: 'empty', size: 0, problems: [] });
  });

  it('reports a sane plaintext database with its page size, journal and page count', async () => {
    const path = makeDatabase('plain.db');
    const info = await inspectDatabaseFile(path);
    expect(info).toMatchObject({
      kind: 'plaintext',
      pageSize: 4096,
      journal: 'rollback',
      sizeIsPageMultiple: true,
      likelyEncrypted: false,
      problems: [],
    });
    expect(info.headerPageCount).toBe(info.size / 4096);
  });

  it('reads WAL mode and a non-default page size from a plaintext header', async () => {
    const path = makeDatabase('wal.db', { wal: true, pageSize: 65536, rows: 50 });
    const info = await inspectDatabaseFile(path);
    expect(info).toMatchObject({
      kind: 'plaintext',
      pageSize: 65536,
      journal: 'wal',
      problems: [],
    });
  });

  it('flags a plaintext database cut in the middle of a page', async () => {
    const path = makeDatabase('cut.db');
    await truncate(path, 4096 * 3 + 1000);
    const info = await inspectDatabaseFile(path);
    expect(info.kind).toBe('plaintext');
    expect(info.sizeIsPageMultiple).toBe(false);
    expect(info.problems.join('\n')).toMatch(/not a multiple of the page size 4096/);
    expect(info.problems.join('\n')).toMatch(/header counts \d+ pages but the file holds 3/);
  });

  it('flags a plaintext database cut at a page boundary by its header page count', async () => {
    const path = makeDatabase('cut2.db');
    await truncate(path, 4096 * 2);
    const info = await inspectDatabaseFile(path);
    expect(info.sizeIsPageMultiple).toBe(true);
    expect(info.problems).toHaveLength(1);
    expect(info.problems[0]).toMatch(/holds 2: truncated/);
  });

  it('reports a file shorter than the header as too-short, noting a plaintext start', async () => {
    const path = makeDatabase('short.db');
    await truncate(path, 50);
    const info = await inspectDatabaseFile(path);
    expect(info).toMatchObject({ kind: 'too-short', size: 50, pageSize: null });
    expect(info.problems[0]).toMatch(/starts like a plaintext SQLite database/);
  });

  it('flags a plaintext header whose page size field is damaged', async () => {
    const path = makeDatabase('badpage.db');
    const bytes = await readFile(path);
    bytes.writeUInt16BE(3000, 16);
    await writeFile(path, bytes);
    const info = await inspectDatabaseFile(path);
    expect(info.kind).toBe('plaintext');
    expect(info.pageSize).toBeNull();
    expect(info.problems[0]).toMatch(/Invalid page size field 3000/);
  });

  it('reports an aes256cbc-encrypted database as likely encrypted', async () => {
    const path = makeDatabase('enc.db', { key: 'a-key-for-tests' });
    const bytes = await readFile(path);
    expect(bytes.subarray(0, 16).toString('latin1')).not.toBe('SQLite format 3\0');
    const info = await inspectDatabaseFile(path);
    expect(info).toMatchObject({
      kind: 'encrypted-or-garbage',
      likelyEncrypted: true,
      pageSize: 4096,
      journal: 'rollback',
      sizeIsPageMultiple: true,
      headerPageCount: null,
      problems: [],
    });
  });

  it('reads the plaintext fragment of an encrypted WAL database with 1024-byte pages', async () => {
    const path = makeDatabase('encwal.db', { key: 'k2', wal: true, pageSize: 1024 });
    const info = await inspectDatabaseFile(path);
    expect(info).toMatchObject({ likelyEncrypted: true, pageSize: 1024, journal: 'wal' });
  });

  it('reports random bytes as encrypted-or-garbage, not likely encrypted', async () => {
    const path = join(dir, 'random.db');
    // Random bytes with a guaranteed mismatch at byte 21, so the test cannot flake.
    const bytes = randomBytes(8192);
    bytes[21] = 0;
    await writeFile(path, bytes);
    const info = await inspectDatabaseFile(path);
    expect(info).toMatchObject({
      kind: 'encrypted-or-garbage',
      likelyEncrypted: false,
      pageSize: null,
      size: 8192,
    });
    expect(info.problems[0]).toMatch(/not a SQLite database/);
  });

  it('reports random bytes shorter than the header as too-short', async () => {
    const path = join(dir, 'tiny.db');
    await writeFile(path, randomBytes(40));
    const info = await inspectDatabaseFile(path);
    expect(info.kind).toBe('too-short');
    expect(info.problems[0]).not.toMatch(/plaintext/);
  });

  it('flags an encrypted database that lost part of a page', async () => {
    const path = makeDatabase('enccut.db', { key: 'k3' });
    await truncate(path, 4096 * 2 + 100);
    const info = await inspectDatabaseFile(path);
    expect(info).toMatchObject({ likelyEncrypted: true, sizeIsPageMultiple: false });
  });

  it('throws IO_ERROR for a directory', async () => {
    await mkdir(join(dir, 'sub'));
    await expect(inspectDatabaseFile(join(dir, 'sub'))).rejects.toMatchObject({ code: 'IO_ERROR' });
  });
});
