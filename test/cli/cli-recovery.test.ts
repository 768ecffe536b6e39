/**
 * The CLI on the recovery paths (issue 10, defects 1, 2, 7, 8 and 10; and from issue 12: a
 * read-only command creates nothing): restore on a full disk changes nothing; restore refuses
 * a source that is not a backup of this database with the expected argument order; `status`
 * warns about files other users can read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildShim, shimEnv } from '../crash/recorder.js';
import { ensureBuilt, holdOpen, makeDatabase, root, tempDir, walguard } from './cli-harness.js';

beforeAll(ensureBuilt, 120_000);

const listing = (dir: string) => fs.readdirSync(dir).sort();

describe('restore on a full disk', () => {
  it('through the shim (ENOSPC past 2 kB written beside the database): exit 1 with DISK_FULL, the database unchanged', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 200 });
    const backupDir = path.join(tempDir(), 'backups');
    const backup = await walguard(['backup', file, '--to', backupDir, '--json']);
    expect(backup.code).toBe(0);
    const backupPath = (backup.json.backup as { path: string }).path;
    const db = fs.readFileSync(file);
    buildShim();
    const run = await walguard(['restore', file, backupPath, '--yes', '--json'], {
      env: shimEnv({ dir, enospcAfterBytes: 2000 }),
    });
    expect(run.code).toBe(1);
    expect(run.json.error).toMatchObject({ code: 'DISK_FULL' });
    expect(run.json.error!.message).toContain('nothing was changed');
    expect(fs.readFileSync(file).equals(db)).toBe(true);
    expect(listing(dir).filter((n) => n.includes('corrupted') || n.includes('restore'))).toEqual(
      [],
    );
  });
});

describe('restore with a source that is not a backup of this database', () => {
  it('arguments swapped while the app holds the database: refused with the expected order, nothing created', async () => {
    const dir = tempDir();
    const data = path.join(dir, 'data');
    fs.mkdirSync(data);
    const file = path.join(data, 'app.db');
    await makeDatabase(file, { rows: 20 });
    const backup = await walguard(['backup', file, '--json']);
    expect(backup.code).toBe(0);
    const app = await holdOpen(file);
    try {
      const before = listing(dir);
      const run = await walguard(['restore', 'latest', '--yes', 'data/app.db'], { cwd: dir });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('walguard restore <db> <backup|latest>');
      expect(run.stderr).toMatch(/is a live database|not a backup/);
      expect(listing(dir)).toEqual(before);
      expect(fs.existsSync(path.join(dir, 'latest'))).toBe(false);
    } finally {
      await app.stop();
    }
  });

  it('a database that is not a backup (no backup identity, not a backup name) is refused with nothing created', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const other = path.join(dir, 'notes.sqlite');
    await makeDatabase(file, { rows: 5 });
    await makeDatabase(other, { rows: 7 });
    const before = listing(dir);
    const run = await walguard(['restore', file, other, '--yes', '--json']);
    expect(run.code).toBe(2);
    expect(run.json.error!.message).toContain('not a backup');
    expect(run.json.error!.message).toContain('walguard restore <db> <backup|latest>');
    expect(listing(dir)).toEqual(before);
  });

  it("another database's backup is refused with WRONG_DATABASE (exit 10), naming both", async () => {
    const dir = tempDir();
    const a = path.join(dir, 'app.db');
    const b = path.join(dir, 'app.sqlite');
    await makeDatabase(a, { rows: 5 });
    await makeDatabase(b, { rows: 9 });
    const backupOfB = await walguard(['backup', b, '--json']);
    const backupPath = (backupOfB.json.backup as { path: string }).path;
    const run = await walguard(['restore', a, backupPath, '--yes', '--json']);
    expect(run.code).toBe(10);
    expect(run.json.error).toMatchObject({ code: 'WRONG_DATABASE' });
    expect(run.json.error!.message).toContain(a);
    expect(run.json.error!.message).toContain(b);
    // `latest` never even considers it.
    const latest = await walguard(['restore', a, 'latest', '--yes', '--json']);
    expect(latest.code).toBe(8);
  });
});

describe('read-only commands create nothing', () => {
  it('status on a file that is not a database (package.json) leaves no .lock or anything else', async () => {
    const dir = tempDir();
    fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
    const run = await walguard(['status', path.join(dir, 'package.json')]);
    expect(run.code).toBe(7);
    expect(listing(dir)).toEqual(['package.json']);
  });

  it('init leaves the database and at most an empty -wal beside it; status, check and backups --verify then add nothing', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    expect((await walguard(['init', file, '--stores', 'conversations'])).code).toBe(0);
    const after = listing(dir);
    // Everything is in the database: the WAL was checkpointed and truncated at close. The
    // reader connections are read-only, so their close leaves the -wal and -shm in place
    // (docs/durability.md § WAL damage says why).
    if (after.includes('app.db-wal')) expect(fs.statSync(`${file}-wal`).size).toBe(0);
    expect(after.filter((f) => !/-(wal|shm)$/.test(f))).toEqual([
      'app.db',
      'app.db.identity',
      'app.db.lock',
    ]);
    for (const args of [['status'], ['check'], ['check', '--full']]) {
      const run = await walguard([...args, file]);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
      expect(listing(dir), args.join(' ')).toEqual(after);
    }
  });
});

describe('status and file modes', () => {
  it('warns when the database or a backup can be read by other users, without failing', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 3 });
    const backup = await walguard(['backup', file, '--json']);
    const backupPath = (backup.json.backup as { path: string }).path;
    const quiet = await walguard(['status', file, '--json']);
    expect(quiet.json.warnings).toEqual([]);

    fs.chmodSync(file, 0o644);
    fs.chmodSync(backupPath, 0o604);
    const run = await walguard(['status', file, '--json']);
    expect(run.code).toBe(0);
    const warnings = run.json.warnings as string[];
    expect(warnings.some((w) => w.includes(file) && w.includes('644'))).toBe(true);
    expect(warnings.some((w) => w.includes(backupPath) && w.includes('604'))).toBe(true);
    const text = await walguard(['status', file]);
    expect(text.stdout).toMatch(/warnings:\n {2}- .*can be read by other users/);
  });
});
