/**
 * Backups name their database unambiguously (issue 10, defect 2): databases that share a
 * backup folder (`app.db` and `app.sqlite`, or two `app.db` in different folders) never prune,
 * list or restore each other's backups; restore refuses another database's backup naming
 * both; backups written before backups had an identity are still listed and restorable for
 * their own database and never pruned.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import Database from 'libsql';
import { describe, expect, it } from 'vitest';
import { listBackups } from '../../src/durability/backups.js';
import { openDatabase, restore, type WalguardOptions } from '../../src/index.js';
import { readFresh, rejection, tempDir } from '../helpers.js';

interface DB {
  notes: { id: number; body: string };
}

async function open(file: string, extra: Partial<WalguardOptions> = {}) {
  const db = await openDatabase<DB>({ path: file, logger: false, handleSignals: false, ...extra });
  await sql`create table if not exists notes (id integer primary key, body text not null)`.execute(
    db.kysely,
  );
  return db;
}

/** Writes a note whose body says which database it is in. */
async function note(file: string, id: number, extra: Partial<WalguardOptions> = {}) {
  const db = await open(file, extra);
  await db.kysely
    .insertInto('notes')
    .values({ id, body: `${path.basename(file)} #${id}` })
    .execute();
  return db;
}

/** Overwrites three pages in the middle of a closed database with random bytes. */
function damage(file: string): void {
  const bytes = fs.readFileSync(file);
  const middle = Math.floor(bytes.length / 2 / 4096) * 4096;
  crypto.randomFillSync(bytes, middle, 4096 * 3);
  fs.writeFileSync(file, bytes);
}

const bodies = (file: string) =>
  readFresh<{ body: string }>(file, 'select body from notes order by id').map((r) => r.body);

describe('databases sharing a backup folder', () => {
  it("app.db and app.sqlite in one folder: one database's retention never deletes the other's backups", async () => {
    const dir = tempDir();
    const a = path.join(dir, 'app.db');
    const b = path.join(dir, 'app.sqlite');
    const backup = { keepLast: 1, keepDailyDays: 0 };
    const dbA = await note(a, 1, { backup });
    await dbA.backup();
    const kept = (await dbA.backup()).path;
    await dbA.close();
    const dbB = await note(b, 1, { backup });
    await dbB.backup();
    await dbB.backup();
    await dbB.close();
    // app.db keeps its newest; app.sqlite's retention (keepLast 1) did not touch it.
    expect(fs.existsSync(kept)).toBe(true);
    expect(path.basename(kept)).toMatch(/^app\.db\.\d{8}T.*Z\.db$/);
    const names = fs.readdirSync(path.join(dir, 'backups')).filter((n) => n.endsWith('Z.db'));
    expect(names.filter((n) => n.startsWith('app.db.'))).toHaveLength(1);
    expect(names.filter((n) => n.startsWith('app.sqlite.'))).toHaveLength(1);
  });

  it("onCorruption 'restore' restores its own database's backup, never the newer one of app.sqlite", async () => {
    const dir = tempDir();
    const a = path.join(dir, 'app.db');
    const b = path.join(dir, 'app.sqlite');
    const dbA = await note(a, 1);
    for (let i = 2; i < 400; i++)
      await dbA.kysely
        .insertInto('notes')
        .values({ id: i, body: 'a'.repeat(300) })
        .execute();
    await dbA.backup();
    await dbA.close();
    const dbB = await note(b, 1);
    await dbB.backup();
    await dbB.close();
    damage(a);
    const restored = await open(a, { onCorruption: 'restore' });
    expect(restored.stats().recovery?.restoredFrom).toMatch(/app\.db\.\d{8}T/);
    await restored.close();
    expect(bodies(a)[0]).toBe('app.db #1');
  });

  it('two app.db in different folders with one backup.dir: each restores and prunes only its own', async () => {
    const root = tempDir();
    const shared = path.join(root, 'shared-backups');
    const a = path.join(root, 'a', 'app.db');
    const b = path.join(root, 'b', 'app.db');
    const backup = { dir: shared, keepLast: 1, keepDailyDays: 0 };
    const dbA = await note(a, 1, { backup });
    for (let i = 2; i < 400; i++)
      await dbA.kysely
        .insertInto('notes')
        .values({ id: i, body: 'a'.repeat(300) })
        .execute();
    const backupOfA = (await dbA.backup()).path;
    await dbA.close();
    const dbB = await note(b, 1, { backup });
    await dbB.backup();
    await dbB.backup();
    await dbB.close();
    // b's retention (keepLast 1) left a's only backup alone.
    expect(fs.existsSync(backupOfA)).toBe(true);
    expect(fs.readdirSync(shared).filter((n) => n.endsWith('Z.db'))).toHaveLength(2);
    const listed = await listBackups(shared, { name: 'app.db', path: fs.realpathSync(a) });
    expect(listed.map((x) => x.path)).toEqual([backupOfA]);

    damage(a);
    const restored = await open(a, { backup, onCorruption: 'restore' });
    expect(restored.stats().recovery?.restoredFrom).toBe(backupOfA);
    await restored.close();
    expect(bodies(a)[0]).toBe('app.db #1');
    expect(bodies(a)).toHaveLength(399);
  });
});

describe('restore() and the backup of another database', () => {
  it('refuses a backup of another database with WRONG_DATABASE, naming both, and changes nothing', async () => {
    const dir = tempDir();
    const a = path.join(dir, 'app.db');
    const b = path.join(dir, 'app.sqlite');
    await (await note(a, 1)).close();
    const dbB = await note(b, 1);
    const backupOfB = (await dbB.backup()).path;
    await dbB.close();
    const before = fs.readFileSync(a);

    const error = await rejection(restore({ path: a, backupPath: backupOfB }));
    expect(error.code).toBe('WRONG_DATABASE');
    expect(error.message).toContain(a);
    expect(error.message).toContain(b);
    expect(fs.readFileSync(a).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).filter((n) => n.includes('corrupted'))).toEqual([]);
  });
});

describe('backups written before backups had an identity', () => {
  it('are listed and restorable for their own database, and never pruned by retention', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const backups = path.join(dir, 'backups');
    await (await note(file, 1)).close();
    // A backup as today's code names it: <base name without extension>.<UTC time>.db, no manifest.
    fs.mkdirSync(backups, { recursive: true });
    const legacy = path.join(backups, 'app.20260101T000000.000Z.db');
    const source = new Database(file);
    source.exec(`VACUUM INTO '${legacy}'`);
    source.close();

    const db = await note(file, 2, { backup: { keepLast: 1, keepDailyDays: 0 } });
    await db.backup();
    await db.backup();
    await db.close();
    expect(fs.existsSync(legacy)).toBe(true);
    const listed = await listBackups(backups, { name: 'app.db', path: fs.realpathSync(file) });
    expect(listed.map((b) => b.path)).toContain(legacy);
    expect(listed.find((b) => b.path === legacy)).toMatchObject({ legacy: true });

    await restore({ path: file, backupPath: legacy });
    expect(bodies(file)).toEqual(['app.db #1']);
  });
});
