/**
 * A damaged WAL never silently drops acknowledged commits (issue 10, defect 4): walguard reads
 * the WAL before SQLite does and tells a torn tail (normal after a crash) from damage; on
 * damage the open fails with CORRUPT naming the frame, and the database and its WAL are
 * quarantined byte for byte before anything opens them.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/index.js';
import { rejection, tempDir } from '../helpers.js';

const root = path.resolve(import.meta.dirname, '../..');
const PAGE = 4096;
const FRAME = 24 + PAGE;
const frameOffset = (frame: number) => 32 + (frame - 1) * FRAME;
const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Runs fixtures/wal-writer.ts: `units` acknowledged commits, then kill -9. */
function crashAfter(file: string, units: number, passphrase?: string): void {
  const child = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(import.meta.dirname, 'fixtures/wal-writer.ts'),
      file,
      String(units),
      ...(passphrase === undefined ? [] : [passphrase]),
    ],
    { cwd: root, encoding: 'utf8' },
  );
  expect(child.signal, child.stderr).toBe('SIGKILL');
  expect(child.stdout.trim().split('\n').at(-1)).toBe(`acked ${units}`);
  expect(fs.statSync(`${file}-wal`).size).toBeGreaterThan(units * FRAME);
}

const open = (file: string, extra: Record<string, unknown> = {}) =>
  openDatabase<{ t: { id: number; body: string } }>({
    path: file,
    logger: false,
    handleSignals: false,
    ...extra,
  });

async function countRows(file: string, extra: Record<string, unknown> = {}): Promise<number> {
  const db = await open(file, extra);
  try {
    const row = await db.kysely
      .selectFrom('t')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  } finally {
    await db.close();
  }
}

function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] = b[0]! ^ 0x10;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

describe('a WAL damaged after a crash', () => {
  it('one flipped byte in an early frame: CORRUPT naming the frame, and the database and WAL are quarantined byte-identical', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    crashAfter(file, 40);
    flipByte(`${file}-wal`, frameOffset(3) + 24 + 200);
    const before = { db: sha(file), wal: sha(`${file}-wal`) };

    const error = await rejection(open(file));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/frame 3\b/);
    expect(error.details).toMatchObject({ walFrame: 3 });
    const quarantine = error.details?.quarantineDir as string;
    expect(sha(path.join(quarantine, 'app.db'))).toBe(before.db);
    expect(sha(path.join(quarantine, 'app.db-wal'))).toBe(before.wal);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
  });

  it("with onCorruption 'restore' the newest good backup is restored and the damaged files are kept", async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const db = await open(file);
    await sql`create table t (id integer primary key, body text not null)`.execute(db.kysely);
    await db.kysely.insertInto('t').values({ id: 1000, body: 'before the backup' }).execute();
    const backup = await db.backup();
    await db.close();
    crashAfter(file, 30);
    flipByte(`${file}-wal`, frameOffset(5) + 24 + 1000);
    const walHash = sha(`${file}-wal`);

    const restored = await open(file, { onCorruption: 'restore' });
    const recovery = restored.stats().recovery!;
    expect(recovery.restoredFrom).toBe(backup.path);
    expect(await restored.kysely.selectFrom('t').select('id').execute()).toEqual([{ id: 1000 }]);
    await restored.close();
    expect(sha(path.join(recovery.quarantineDir!, 'app.db-wal'))).toBe(walHash);
  });

  it('a damaged WAL header (SQLite would ignore the whole WAL) is CORRUPT too', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    crashAfter(file, 20);
    flipByte(`${file}-wal`, 13); // the checkpoint sequence: covered by the header checksum
    const error = await rejection(open(file));
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/WAL header/);
  });

  it('an encrypted database: the frame headers are plaintext and checksummed over the ciphertext, so damage is found the same way', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'enc.db');
    crashAfter(file, 25, 'wal of an encrypted database');
    flipByte(`${file}-wal`, frameOffset(4) + 24 + 77);
    const error = await rejection(
      open(file, { encryption: { passphrase: 'wal of an encrypted database' } }),
    );
    expect(error.code).toBe('CORRUPT');
    expect(error.message).toMatch(/frame 4\b/);
  });
});

/** A full garbage collection, in a process started without --expose-gc. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

describe('a closed database leaves the WAL to the next open', () => {
  it('no connection of a closed walguard checkpoints or deletes, at a later garbage collection, the WAL another process left', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const db = await open(file);
    await sql`create table t (id integer primary key, body text not null)`.execute(db.kysely);
    await db.kysely.insertInto('t').values({ id: 0, body: 'first' }).execute();
    // Reads on the main thread and on a reader thread: each prepares statements, which keep a
    // libsql connection open after close() until they are garbage-collected.
    for (let i = 0; i < 40; i++) await db.kysely.selectFrom('t').selectAll().execute();
    await sql`select count(*) as n from t /* walguard: reader thread */`.execute(db.kysely);
    expect(db.stats().reads.main).toBeGreaterThan(0);
    await db.close();
    // Another process appends commits and dies, leaving them in the WAL only.
    crashAfter(file, 20);
    const wal = sha(`${file}-wal`);
    for (let i = 0; i < 3; i++) {
      collectGarbage();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Still there, unchanged: SQLite's recovery on a late close would have checkpointed and
    // deleted it behind walguard's WAL inspection.
    expect(fs.existsSync(`${file}-wal`)).toBe(true);
    expect(sha(`${file}-wal`)).toBe(wal);
    expect(await countRows(file)).toBe(21);
  });
});

describe('a torn tail is not damage', () => {
  it('half a frame, a frame of garbage, or a last frame whose checksum fails after a crash: every acknowledged commit opens', async () => {
    const dir = tempDir();
    const model = path.join(dir, 'model.db');
    crashAfter(model, 30);
    const wal = fs.readFileSync(`${model}-wal`);
    const lastFrame = wal.subarray(wal.length - FRAME);
    const tails: Record<string, Buffer> = {
      'half a frame': lastFrame.subarray(0, FRAME / 2),
      'a frame of zeros': Buffer.alloc(FRAME),
      // The same frame again, its page changed: the chain breaks at the last frame.
      'a torn last frame': Buffer.concat([lastFrame.subarray(0, 24), Buffer.alloc(PAGE, 7)]),
    };
    for (const [name, tail] of Object.entries(tails)) {
      const file = path.join(dir, `${name.replaceAll(' ', '-')}.db`);
      fs.copyFileSync(model, file);
      fs.writeFileSync(`${file}-wal`, Buffer.concat([wal, tail]));
      expect(await countRows(file), name).toBe(30);
    }
  });
});
