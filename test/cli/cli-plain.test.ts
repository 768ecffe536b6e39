import fs from 'node:fs';
import path from 'node:path';
import Database from 'libsql';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, makeDatabase, tempDir, walguard } from './cli-harness.js';

beforeAll(ensureBuilt, 120_000);

/** Reads rows through a fresh connection of its own. */
function count(file: string, table = 'notes'): number {
  const db = new Database(file);
  try {
    return Number((db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n);
  } finally {
    db.close();
  }
}

describe('init', () => {
  it('creates a WAL database with the stores, read back through status; refuses an existing one', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const init = await walguard(['init', file, '--dimensions', '8', '--json']);
    expect(init.code).toBe(0);
    expect(init.json).toMatchObject({
      ok: true,
      database: file,
      encrypted: false,
      keyFile: null,
      settings: { journal_mode: 'wal', synchronous: 2, foreign_keys: 1 },
    });
    expect((init.json.migrations as { set: string }[]).map((m) => m.set)).toEqual([
      'conversations',
      'memories',
    ]);
    const status = await walguard(['status', file, '--json']);
    expect(status.code).toBe(0);
    expect(status.json).toMatchObject({
      encrypted: false,
      header: { kind: 'plaintext', journal: 'wal' },
      lock: { held: false },
      settings: { journal_mode: 'wal', synchronous: 2, busy_timeout: 5000 },
      schema: {
        migrations: [
          { set: 'conversations', applied: 1, latest: '0001_conversations_and_messages' },
          { set: 'memories', applied: 1 },
        ],
      },
      backups: { count: 0, newest: null },
      problems: [],
    });
    expect(count(file, 'conversations')).toBe(0);
    const again = await walguard(['init', file, '--stores', 'conversations', '--json']);
    expect(again.code).toBe(1);
    expect(again.json.error!.message).toContain('already exists');
  });
});

describe('status, check, backup, backups and restore on a plaintext database', () => {
  it('status reports sizes, last checkpoint and backups in text and JSON', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 100 });
    const text = await walguard(['status', file]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('plaintext SQLite, wal journal');
    expect(text.stdout).toMatch(/lock\s+free/);
    expect(text.stdout).toMatch(/backups\s+none in/);
    const json = await walguard(['status', file, '--json']);
    const files = json.json.files as { db: { bytes: number } };
    expect(files.db.bytes).toBe(fs.statSync(file).size);
    expect(json.json.lastCheckpoint).toMatchObject({ at: fs.statSync(file).mtime.toISOString() });
    expect(json.json.schema).toMatchObject({ tables: 1, migrations: [] });
  });

  it('status shows how reads are configured to run, from the configuration file', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 1 });
    const config = path.join(dir, 'walguard.yaml');
    fs.writeFileSync(config, 'path: app.db\nreaders:\n  threads: 3\n  mainThreadMaxUs: 100\n');
    const text = await walguard(['status', '--config', config]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /reads\s+3 reader threads \(nice 10\); reads measured at most 100 µs on the main thread \(1000 µs per event-loop turn\)/,
    );
    const json = await walguard(['status', '--config', config, '--json']);
    expect(json.json.readers).toEqual({
      threads: 3,
      mainThreadMaxUs: 100,
      turnBudgetUs: 1000,
      nice: 10,
    });
  });

  it('check runs quick_check or integrity_check with --full, with progress on request', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 200 });
    const [quick, full] = await Promise.all([
      walguard(['check', file, '--json']),
      walguard(['check', file, '--full', '--progress']),
    ]);
    expect(quick.json).toMatchObject({ ok: true, healthy: true, level: 'quick', messages: ['ok'] });
    expect(full.code).toBe(0);
    expect(full.stdout).toContain('full check ok');
    expect(full.stderr).toMatch(/integrity_check: ok in \d/);
  });

  it('backup writes a verified copy (default folder and --to), backups lists and verifies, restore brings it back', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 100 });
    const first = await walguard(['backup', file, '--json', '--progress']);
    expect(first.code).toBe(0);
    const backup = first.json.backup as { path: string; bytes: number };
    expect(path.dirname(backup.path)).toBe(path.join(dir, 'backups'));
    // Named after the database's full file name, with its manifest beside it.
    expect(path.basename(backup.path)).toMatch(/^app\.db\.\d{8}T\d{6}\.\d{3}Z\.db$/);
    expect(fs.existsSync(`${backup.path}.json`)).toBe(true);
    expect(count(backup.path)).toBe(100);
    expect(first.stderr).toContain('backup: written and verified');
    const elsewhere = await walguard(['backup', file, '--to', path.join(dir, 'other')]);
    expect(elsewhere.code).toBe(0);
    // The backup and its manifest (which names the database).
    const other = fs.readdirSync(path.join(dir, 'other')).sort();
    expect(other).toHaveLength(2);
    expect(other[1]).toBe(`${other[0]}.json`);

    const listed = await walguard(['backups', file, '--verify', '--json']);
    expect(listed.code).toBe(0);
    expect(listed.json).toMatchObject({
      failed: 0,
      backups: [{ path: backup.path, verified: true, error: null, keyFile: false }],
    });

    // Change the live database, then restore the backup: the change is gone, the previous
    // files are quarantined, not deleted.
    const db = new Database(file);
    db.exec('delete from notes where id >= 10');
    db.close();
    expect(count(file)).toBe(10);
    const restored = await walguard(['restore', file, backup.path, '--yes', '--json']);
    expect(restored.code).toBe(0);
    expect(restored.json).toMatchObject({ restoredFrom: backup.path });
    expect(count(file)).toBe(100);
    const quarantine = restored.json.quarantineDir as string;
    expect(fs.existsSync(path.join(quarantine, 'app.db'))).toBe(true);
    expect(count(path.join(quarantine, 'app.db'))).toBe(10);
  });

  it('restore asks first: "y" on stdin restores, "n" or no answer aborts (9) with nothing changed', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 20 });
    const taken = await walguard(['backup', file, '--json']);
    expect(taken.code).toBe(0);
    const db = new Database(file);
    db.exec('delete from notes');
    db.close();
    const before = fs.readFileSync(file);
    // One after the other: each restore holds the database's lock while it asks.
    const no = await walguard(['restore', file, 'latest'], { input: 'n\n' });
    const silent = await walguard(['restore', file, 'latest', '--json']);
    expect(no.code).toBe(9);
    expect(no.stderr).toContain('Writes made after');
    expect(no.stderr).toContain('nothing was changed');
    expect(silent.code).toBe(9);
    expect(silent.json.error).toMatchObject({ code: 'ABORTED' });
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(dir).some((n) => n.includes('.corrupted.'))).toBe(false);
    const yes = await walguard(['restore', file, 'latest'], { input: 'y\n' });
    expect(yes.code).toBe(0);
    expect(yes.stdout).toContain('Restored');
    expect(count(file)).toBe(20);
  });

  it('restore works where the database is gone, and `latest` with no backup is NOT_FOUND', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 30 });
    expect((await walguard(['backup', file])).code).toBe(0);
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(file + suffix, { force: true });
    const listed = await walguard(['backups', file, '--json']);
    expect(listed.code).toBe(0);
    expect(listed.json.backups).toHaveLength(1);
    const restored = await walguard(['restore', file, 'latest', '--yes', '--json']);
    expect(restored.code).toBe(0);
    expect(restored.json.quarantineDir).toBeNull();
    expect(count(file)).toBe(30);

    const empty = path.join(tempDir(), 'fresh.db');
    await makeDatabase(empty, { rows: 1 });
    const none = await walguard(['restore', empty, 'latest', '--yes', '--json']);
    expect(none.code).toBe(8);
    const noBackups = await walguard(['backups', empty, '--json']);
    expect(noBackups.code).toBe(1);
    expect(noBackups.json.error!.message).toContain('No backup of');
  });
});

describe('maintenance: checkpoint, vacuum, optimize', () => {
  it('checkpoint folds the WAL back (TRUNCATE by default, --mode otherwise)', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 10 });
    // Leave frames in the WAL: a connection that writes and is not closed cleanly.
    const db = new Database(file);
    db.exec('pragma journal_mode = wal; pragma wal_autocheckpoint = 0');
    db.exec(`insert into notes (id, body) values (1000, '${'y'.repeat(5000)}')`);
    const walBefore = fs.statSync(`${file}-wal`).size;
    expect(walBefore).toBeGreaterThan(0);
    const passive = await walguard(['checkpoint', file, '--mode', 'passive', '--json']);
    expect(passive.code).toBe(0);
    expect(passive.json).toMatchObject({ mode: 'PASSIVE', busy: false });
    expect(passive.json.checkpointedFrames).toBe(passive.json.logFrames);
    db.close();
    const truncate = await walguard(['checkpoint', file, '--json']);
    expect(truncate.code).toBe(0);
    expect(truncate.json).toMatchObject({ mode: 'TRUNCATE', walBytesAfter: 0 });
    expect(count(file)).toBe(11);
  });

  it('vacuum reclaims free pages and optimize writes planner statistics', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 500 });
    const db = new Database(file);
    db.exec('create index notes_body on notes (body); delete from notes where id % 2 = 0');
    db.exec('pragma wal_checkpoint(truncate)');
    db.close();
    const vacuum = await walguard(['vacuum', file, '--json']);
    expect(vacuum.code).toBe(0);
    const v = vacuum.json as unknown as Record<string, number>;
    expect(v.freePagesBefore).toBeGreaterThan(0);
    expect(v.freePagesAfter).toBe(0);
    expect(v.bytesAfter).toBeLessThan(v.bytesBefore!);
    expect(fs.statSync(file).size).toBe(v.bytesAfter);
    const optimize = await walguard(['optimize', file]);
    expect(optimize.code).toBe(0);
    expect(optimize.stdout).toMatch(/optimize done .* statistics rows/);
    expect(count(file, 'sqlite_stat1')).toBeGreaterThan(0);
    expect(count(file)).toBe(250);
    const check = await walguard(['check', file, '--full', '--json']);
    expect(check.json.healthy).toBe(true);
  });
});
