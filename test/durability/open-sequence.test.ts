import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase, restore, type Walguard, type WalguardOptions } from '../../src/index.js';
import { readFresh, tempDir } from '../helpers.js';

const fixtures = path.join(import.meta.dirname, '../fixtures');

interface DB {
  notes: { id: number; body: string };
}

async function open(options: Partial<WalguardOptions> & { path: string }): Promise<Walguard<DB>> {
  return openDatabase<DB>({ logger: false, handleSignals: false, ...options });
}

async function seed(
  file: string,
  rows: number,
  extra: Partial<WalguardOptions> = {},
): Promise<void> {
  const db = await open({ path: file, ...extra });
  await sql`create table if not exists notes (id integer primary key, body text not null)`.execute(
    db.kysely,
  );
  await db.write((k) =>
    Array.from({ length: rows }, (_, i) =>
      k.insertInto('notes').values({ id: i, body: `note-${i}-${'x'.repeat(180)}` }),
    ),
  );
  await db.close();
}

/** Starts a child that holds the database open; resolves once it is ready. */
async function holdOpen(file: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(fixtures, 'hold-open.ts'), file],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      if (c.toString().includes('ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`holder exited early (${code})`)));
  });
  return child;
}

describe('process lock', () => {
  it('a second open in the same process fails with LOCKED naming the pid; close releases it', async () => {
    const file = path.join(tempDir(), 'a.db');
    const first = await open({ path: file });
    await expect(open({ path: file })).rejects.toMatchObject({
      code: 'LOCKED',
      details: { pid: process.pid },
    });
    await first.close();
    const again = await open({ path: file });
    await again.close();
  });

  it('another process gets LOCKED with the owner pid, and opens at once after kill -9 of the owner', async () => {
    const file = path.join(tempDir(), 'b.db');
    const holder = await holdOpen(file);
    try {
      const error = await open({ path: file }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'LOCKED', details: { pid: holder.pid } });
      expect(String((error as Error).message)).toContain(String(holder.pid));
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    const db = await open({ path: file });
    expect(
      await db.kysely
        .selectFrom('t' as never)
        .selectAll()
        .execute(),
    ).toEqual([]);
    await db.close();
  });
});

describe('encryption at rest', () => {
  it('keeps data unreadable on disk and tells a wrong passphrase, a missing one, and a missing key file apart', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'secret.db');
    const passphrase = 'correct horse battery staple';
    const db = await open({ path: file, encryption: { passphrase } });
    await sql`create table notes (id integer primary key, body text not null)`.execute(db.kysely);
    await db.kysely
      .insertInto('notes')
      .values({ id: 1, body: 'MARKER-plaintext-should-not-appear' })
      .execute();
    // Before close the row is in the WAL: it must be encrypted there too.
    const walBytes = fs.readFileSync(`${file}-wal`);
    expect(walBytes.includes('MARKER-plaintext')).toBe(false);
    await db.close();
    expect(fs.readFileSync(file).includes('MARKER-plaintext')).toBe(false);
    expect(fs.statSync(`${file}.keyinfo`).mode & 0o777).toBe(0o600);

    const reopened = await open({ path: file, encryption: { passphrase } });
    expect(await reopened.kysely.selectFrom('notes').select('body').execute()).toEqual([
      { body: 'MARKER-plaintext-should-not-appear' },
    ]);
    await reopened.close();

    const wrong = await open({ path: file, encryption: { passphrase: 'wrong horse' } }).catch(
      (e: Error) => e,
    );
    expect(wrong).toMatchObject({ code: 'WRONG_KEY' });
    expect((wrong as Error).message).not.toContain('wrong horse');
    await expect(open({ path: file })).rejects.toMatchObject({ code: 'KEY_REQUIRED' });

    fs.renameSync(`${file}.keyinfo`, `${file}.keyinfo.away`);
    const missing = await open({ path: file, encryption: { passphrase } }).catch((e: Error) => e);
    expect(missing).toMatchObject({ code: 'KEY_REQUIRED' });
    expect((missing as Error).message).toContain('.keyinfo');
    expect((missing as Error).message).not.toContain(passphrase);
  });

  it('refuses a plaintext file opened with a key, without changing a byte of it', async () => {
    const file = path.join(tempDir(), 'plain.db');
    await seed(file, 10);
    const before = fs.readFileSync(file);
    await expect(open({ path: file, encryption: { passphrase: 'pw' } })).rejects.toMatchObject({
      code: 'NOT_ENCRYPTED',
    });
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.existsSync(`${file}.keyinfo`)).toBe(false);
  });

  it('a damaged encrypted file with the right passphrase is CORRUPT, not WRONG_KEY', async () => {
    const file = path.join(tempDir(), 'enc-damaged.db');
    await seed(file, 500, { encryption: { passphrase: 'pw' } });
    const bytes = fs.readFileSync(file);
    crypto.randomFillSync(bytes, 0, 4096 * 2); // pages 1-2 (with a 4 KiB page size)
    bytes.copy(bytes, 16, 16, 24); // keep the plaintext header fragment, as a real bit rot would
    fs.writeFileSync(file, bytes);
    await expect(open({ path: file, encryption: { passphrase: 'pw' } })).rejects.toMatchObject({
      code: 'CORRUPT',
    });
  });
});

describe('damaged files', () => {
  it('a truncated file and random bytes each get their own clear CORRUPT error (a 0-byte file is a new database: first-open.test.ts)', async () => {
    const dir = tempDir();
    const short = path.join(dir, 'short.db');
    fs.writeFileSync(short, 'SQLite format 3\0');
    await expect(open({ path: short })).rejects.toThrow(/shorter than a database header/);
    const random = path.join(dir, 'random.db');
    fs.writeFileSync(random, crypto.randomBytes(64 * 1024));
    await expect(open({ path: random })).rejects.toMatchObject({
      code: 'CORRUPT',
      message: expect.stringContaining('is not a SQLite database'),
    });
    // Nothing was deleted or rewritten.
    expect(fs.statSync(short).size).toBe(16);
    expect(fs.statSync(random).size).toBe(64 * 1024);
  });

  it("fails with CORRUPT on damaged pages, and with onCorruption 'restore' quarantines them byte-for-byte and restores the newest good backup", async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await seed(file, 2000);
    const db = await open({ path: file });
    const older = await db.backup();
    await db.kysely.insertInto('notes').values({ id: 5000, body: 'after first backup' }).execute();
    const newer = await db.backup();
    expect(newer.path).not.toBe(older.path);
    await db.kysely.insertInto('notes').values({ id: 6000, body: 'after last backup' }).execute();
    await db.close();

    const bytes = fs.readFileSync(file);
    const middle = Math.floor(bytes.length / 2 / 4096) * 4096;
    crypto.randomFillSync(bytes, middle, 4096 * 3);
    fs.writeFileSync(file, bytes);

    await expect(open({ path: file })).rejects.toMatchObject({ code: 'CORRUPT' });
    expect(fs.readFileSync(file).equals(bytes)).toBe(true);

    const restored = await open({ path: file, onCorruption: 'restore' });
    const ids = (
      await restored.kysely.selectFrom('notes').select('id').where('id', '>=', 5000).execute()
    ).map((r) => r.id);
    expect(ids).toEqual([5000]);
    expect((await restored.check('full')).ok).toBe(true);
    expect(restored.stats().recovery).toMatchObject({
      restoredFrom: newer.path,
      quarantineDir: expect.stringContaining('app.db.corrupted.'),
    });
    await restored.close();

    const quarantine = fs.readdirSync(dir).filter((n) => n.startsWith('app.db.corrupted.'));
    expect(quarantine).toHaveLength(1);
    expect(fs.readFileSync(path.join(dir, quarantine[0]!, 'app.db')).equals(bytes)).toBe(true);
  });
});

describe('backups', () => {
  it('a backup taken while 8 writers write is consistent and holds every write acknowledged before it began', async () => {
    const file = path.join(tempDir(), 'busy.db');
    await seed(file, 1);
    const db = await open({ path: file });
    const acked: number[] = [];
    let stop = false;
    let next = 100;
    const writers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const id = next++;
        await db.kysely
          .insertInto('notes')
          .values({ id, body: `w${id}` })
          .execute();
        acked.push(id);
      }
    });
    await new Promise((r) => setTimeout(r, 100));
    const ackedBefore = [...acked];
    const backup = await db.backup();
    stop = true;
    await Promise.all(writers);
    expect(acked.length).toBeGreaterThan(ackedBefore.length);
    expect(readFresh(backup.path, 'pragma integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    const inBackup = new Set(
      readFresh<{ id: number }>(backup.path, 'select id from notes').map((r) => r.id),
    );
    expect(ackedBefore.filter((id) => !inBackup.has(id))).toEqual([]);
    await db.close();
  });

  it('retention keeps the newest keepLast backups; restore() round-trips and refuses an open database', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'kept.db');
    await seed(file, 5);
    const db = await open({ path: file, backup: { keepLast: 2, keepDailyDays: 0 } });
    const taken = [];
    for (let i = 0; i < 4; i++) {
      await db.kysely
        .insertInto('notes')
        .values({ id: 100 + i, body: `gen ${i}` })
        .execute();
      taken.push(await db.backup());
    }
    const remaining = fs
      .readdirSync(path.join(dir, 'backups'))
      .filter((n) => n.endsWith('.db'))
      .sort();
    expect(remaining.map((n) => path.join(dir, 'backups', n))).toEqual(
      taken
        .slice(2)
        .map((b) => b.path)
        .sort(),
    );
    await expect(restore({ path: file, backupPath: taken[2]!.path })).rejects.toMatchObject({
      code: 'LOCKED',
    });
    await db.close();

    const result = await restore({ path: file, backupPath: taken[2]!.path });
    expect(result.quarantineDir).toBeDefined();
    expect(readFresh(file, 'select max(id) as m from notes')).toEqual([{ m: 102 }]);
    expect(fs.existsSync(path.join(result.quarantineDir!, 'kept.db'))).toBe(true);
  });

  it('restore() moves a stale -wal left beside a missing database aside, so it is not replayed onto the backup', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'gone.db');
    await seed(file, 5);
    const db = await open({ path: file });
    const backup = await db.backup();
    await db.close();
    // Another database's WAL, with frames that would be replayed onto whatever file sits beside it.
    const other = path.join(dir, 'other.db');
    const { default: Database } = await import('libsql');
    const writer = new Database(other);
    writer.exec('pragma journal_mode = wal; pragma wal_autocheckpoint = 0');
    writer.exec("create table other (x); insert into other select 'y' from generate_series(1, 50)");
    const staleWal = fs.readFileSync(`${other}-wal`);
    writer.close();
    fs.renameSync(file, path.join(dir, 'moved-away.db'));
    fs.writeFileSync(`${file}-wal`, staleWal);

    const result = await restore({ path: file, backupPath: backup.path });
    expect(result.quarantineDir).toBeDefined();
    expect(fs.readFileSync(path.join(result.quarantineDir!, 'gone.db-wal')).equals(staleWal)).toBe(
      true,
    );
    expect(readFresh(file, 'pragma integrity_check')).toEqual([{ integrity_check: 'ok' }]);
    expect(readFresh(file, 'select count(*) as n from notes')).toEqual([{ n: 5 }]);
  });

  it('an encrypted backup needs the same passphrase and carries its key file', async () => {
    const file = path.join(tempDir(), 'enc.db');
    await seed(file, 3, { encryption: { passphrase: 'pw' } });
    const db = await open({ path: file, encryption: { passphrase: 'pw' } });
    const backup = await db.backup();
    await db.close();
    expect(fs.existsSync(`${backup.path}.keyinfo`)).toBe(true);
    expect(fs.readFileSync(backup.path).includes('note-1-')).toBe(false);
    const copy = await open({
      path: backup.path,
      encryption: { passphrase: 'pw' },
      integrityCheck: 'full',
    });
    expect(await copy.kysely.selectFrom('notes').select('id').execute()).toHaveLength(3);
    await copy.close();
  });
});

describe('checkpoints', () => {
  it('keep the WAL near its cap under sustained writes, and record each checkpoint', async () => {
    const cap = 256 * 1024;
    const db = await open({
      path: path.join(tempDir(), 'wal.db'),
      checkpoint: { walSizeLimitBytes: cap, idleMs: 50 },
    });
    await sql`create table notes (id integer primary key, body text not null)`.execute(db.kysely);
    const events: string[] = [];
    db.on('checkpoint', (e) => events.push(e.reason));
    let maxWal = 0;
    for (let round = 0; round < 40; round++) {
      await db.write((k) =>
        Array.from({ length: 50 }, (_, i) =>
          k.insertInto('notes').values({ id: round * 50 + i, body: 'y'.repeat(500) }),
        ),
      );
      maxWal = Math.max(maxWal, db.stats().walBytes);
    }
    // A TRUNCATE runs after any batch that left the WAL past the cap, so it never grows by more than a batch or two.
    expect(maxWal).toBeLessThan(cap * 2);
    expect(events).toContain('wal-size');
    await new Promise((r) => setTimeout(r, 200));
    expect(events).toContain('idle');
    const stats = db.stats();
    expect(stats.lastCheckpoint).toMatchObject({
      mode: expect.any(String),
      durationMs: expect.any(Number),
    });
    expect(stats.checkpoints).toBeGreaterThan(0);
    await db.close();
  });
});

describe('signals', () => {
  it('SIGTERM with pending critical and deferred writes exits with the conventional status, everything persisted, WAL truncated', async () => {
    const file = path.join(tempDir(), 'term.db');
    const count = 2000;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(fixtures, 'sigterm-writer.ts'), file, String(count)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (c: Buffer) => {
        if (c.toString().includes('submitted')) resolve();
      });
    });
    child.kill('SIGTERM');
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) =>
      child.on('exit', (c, s) => resolve([c, s])),
    );
    // Re-raised with the default action: killed by SIGTERM, as without walguard.
    expect(signal === 'SIGTERM' || code === 143).toBe(true);
    expect(readFresh(file, 'select count(*) as n, count(distinct n) as d from t')).toEqual([
      { n: count, d: count },
    ]);
    expect(!fs.existsSync(`${file}-wal`) || fs.statSync(`${file}-wal`).size === 0).toBe(true);
  });
});

describe('secrets', () => {
  it('no passphrase or key appears in any log line or error message', async () => {
    const { Writable } = await import('node:stream');
    const pino = (await import('pino')).default;
    const { readKeyFile, deriveKey } = await import('../../src/durability/key-file.js');
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ level: 'trace' }, sink);
    const dir = tempDir();
    const file = path.join(dir, 'secret.db');
    const passphrase = 'hunter2-very-secret-passphrase';
    const db = await openDatabase<DB>({
      path: file,
      logger,
      handleSignals: false,
      encryption: { passphrase },
    });
    await sql`create table notes (id integer primary key, body text not null)`.execute(db.kysely);
    await db.kysely.insertInto('notes').values({ id: 1, body: 'row data' }).execute();
    await db.backup();
    await db.close();
    const errors: string[] = [];
    for (const bad of [{ passphrase: 'wrong-passphrase-xyz' }, { key: 'raw-key-value-123' }]) {
      const e = await openDatabase({
        path: file,
        logger,
        handleSignals: false,
        encryption: bad,
      }).catch((x: Error) => x);
      errors.push(String((e as Error).message), JSON.stringify(e));
    }
    const key = await deriveKey(passphrase, (await readKeyFile(file))!);
    const everything = [...lines, ...errors].join('\n');
    expect(lines.length).toBeGreaterThan(5);
    for (const secret of [passphrase, key, 'wrong-passphrase-xyz', 'raw-key-value-123']) {
      expect(everything).not.toContain(secret);
    }
  });
});
