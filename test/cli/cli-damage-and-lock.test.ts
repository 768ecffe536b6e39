import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  damagePages,
  ensureBuilt,
  holdOpen,
  makeDatabase,
  tempDir,
  walguard,
} from './cli-harness.js';

beforeAll(ensureBuilt, 120_000);

describe('a database the app has open (LOCKED)', () => {
  it('status names the owner, check and backup still work, and every writing command exits 3 with nothing done', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 50 });
    const backup = await walguard(['backup', file, '--json']);
    const app = await holdOpen(file);
    try {
      const status = await walguard(['status', file, '--json']);
      expect(status.code).toBe(0);
      expect(status.json.lock).toEqual({ held: true, pid: app.pid });
      const text = await walguard(['status', file]);
      expect(text.stdout).toContain(`held by process ${app.pid}`);

      const [check, online] = await Promise.all([
        walguard(['check', file, '--json']),
        walguard(['backup', file, '--json']),
      ]);
      expect(check.json.healthy).toBe(true);
      expect(online.code).toBe(0);

      const blocked = await Promise.all(
        [
          ['checkpoint', file],
          ['vacuum', file],
          ['optimize', file],
          ['restore', file, (backup.json.backup as { path: string }).path, '--yes'],
        ].map((args) => walguard([...args, '--json'])),
      );
      for (const run of blocked) {
        expect(run.code, run.json.command as string).toBe(3);
        expect(run.json.error).toMatchObject({ code: 'LOCKED' });
        expect(run.json.error!.message).toContain(String(app.pid));
      }
      const human = await walguard(['vacuum', file]);
      expect(human.code).toBe(3);
      expect(human.stderr).toContain('walguard vacuum: LOCKED:');
      expect(human.stderr).toContain('Stop it (SIGTERM');
      expect(fs.readdirSync(dir).some((n) => n.includes('.corrupted.'))).toBe(false);
    } finally {
      await app.stop();
    }
    // Once the app is gone (even killed), the lock is gone with it.
    const after = await walguard(['checkpoint', file, '--json']);
    expect(after.code).toBe(0);
  });
});

describe('damaged databases and backups (CORRUPT)', () => {
  it('check finds damaged pages (7), vacuum refuses (7), and restore latest brings back the newest good backup', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 2000 });
    const good = await walguard(['backup', file, '--json']);
    expect(good.code).toBe(0);
    damagePages(file);
    const damaged = fs.readFileSync(file);

    const check = await walguard(['check', file, '--json']);
    expect(check.code).toBe(7);
    expect(check.json).toMatchObject({ ok: false, healthy: false, error: { code: 'CORRUPT' } });
    expect((check.json.messages as string[]).join()).not.toBe('ok');
    const text = await walguard(['check', file, '--full']);
    expect(text.code).toBe(7);
    expect(text.stdout).toContain('found damage');
    expect(text.stdout).toContain('walguard restore');
    const vacuum = await walguard(['vacuum', file, '--json']);
    expect(vacuum.code).toBe(7);
    expect(vacuum.json.error).toMatchObject({ code: 'CORRUPT' });
    expect(fs.readFileSync(file).equals(damaged)).toBe(true);

    // A backup of a damaged database fails its own verification and is discarded.
    const copy = await walguard(['backup', file, '--json']);
    expect([1, 7]).toContain(copy.code);
    const listed = await walguard(['backups', file, '--json']);
    expect(listed.json.backups).toHaveLength(1);

    const restored = await walguard(['restore', file, 'latest', '--yes', '--json']);
    expect(restored.code).toBe(0);
    expect(restored.json.restoredFrom).toBe((good.json.backup as { path: string }).path);
    const quarantined = path.join(restored.json.quarantineDir as string, 'app.db');
    expect(fs.readFileSync(quarantined).equals(damaged)).toBe(true);
    expect((await walguard(['check', file, '--full', '--json'])).json.healthy).toBe(true);
  });

  it('a foreign file is CORRUPT for status and check, an empty one a problem (a new database never written); status still reports the file facts', async () => {
    const dir = tempDir();
    const empty = path.join(dir, 'empty.db');
    fs.writeFileSync(empty, '');
    const foreign = path.join(dir, 'foreign.db');
    fs.writeFileSync(foreign, Buffer.alloc(8192, 7));
    const [s1, c1, s2] = await Promise.all([
      walguard(['status', empty, '--json']),
      walguard(['check', empty, '--json']),
      walguard(['status', foreign, '--json']),
    ]);
    // A 0-byte file is what a first open that died left: openDatabase makes it a new database.
    expect(s1.code).toBe(1);
    expect(s1.json).toMatchObject({ header: { kind: 'empty' }, error: { code: 'PROBLEM' } });
    expect(s1.json.lock).toEqual({ held: false });
    expect(c1.code).toBe(1);
    expect(c1.json.error!.message).toContain('is empty (0 bytes)');
    expect(s2.code).toBe(7);
    expect(s2.json.error!.message).toContain('not a SQLite database');
    expect(fs.statSync(empty).size).toBe(0);
  });

  it('a damaged backup fails backups --verify (1) and restore refuses it (7) with nothing changed', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 2000 });
    const taken = await walguard(['backup', file, '--json']);
    const backupPath = (taken.json.backup as { path: string }).path;
    damagePages(backupPath);
    const verify = await walguard(['backups', file, '--verify', '--json']);
    expect(verify.code).toBe(1);
    expect(verify.json).toMatchObject({
      failed: 1,
      backups: [{ verified: false, error: { code: 'CORRUPT' } }],
    });
    const before = fs.readFileSync(file);
    // One after the other: each restore takes the database's lock.
    const explicit = await walguard(['restore', file, backupPath, '--yes', '--json']);
    const latest = await walguard(['restore', file, 'latest', '--yes', '--json']);
    expect(explicit.code).toBe(7);
    expect(explicit.json.error!.message).toMatch(/failed its quick_check|cannot be read/);
    expect(latest.code).toBe(7);
    expect(latest.json.error!.message).toContain('No backup of app.db in');
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });
});
