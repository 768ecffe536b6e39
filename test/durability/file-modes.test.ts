/**
 * File modes (issue 10, defect 10): every file walguard creates is 0600 and every backup folder
 * 0700, whatever the umask lets through; a file that already exists keeps its mode.
 */
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/index.js';
import { tempDir } from '../helpers.js';

const mode = (file: string) => (fs.statSync(file).mode & 0o777).toString(8);

describe('file modes', () => {
  it('the database, its WAL and shared memory, the lock, the pid file, the key file, backups and their folder are private (default umask 022)', async () => {
    const previous = process.umask(0o022);
    try {
      const dir = tempDir();
      const file = path.join(dir, 'app.db');
      const backups = path.join(dir, 'backups');
      const db = await openDatabase({
        path: file,
        logger: false,
        handleSignals: false,
        encryption: { passphrase: 'private files' },
      });
      await sql`create table t (x)`.execute(db.kysely);
      await sql`insert into t values (1)`.execute(db.kysely);
      const backup = await db.backup();
      const open = ['app.db', 'app.db-wal', 'app.db-shm', 'app.db.lock', 'app.db.lock.pid'];
      for (const name of open) expect(mode(path.join(dir, name)), name).toBe('600');
      await db.close();
      for (const name of fs.readdirSync(dir)) {
        const full = path.join(dir, name);
        if (fs.statSync(full).isFile()) expect(mode(full), name).toBe('600');
      }
      expect(mode(backups)).toBe('700');
      expect(fs.readdirSync(backups).length).toBeGreaterThanOrEqual(2);
      for (const name of fs.readdirSync(backups)) {
        expect(mode(path.join(backups, name)), name).toBe('600');
      }
      expect(fs.existsSync(`${backup.path}.keyinfo`)).toBe(true);
    } finally {
      process.umask(previous);
    }
  });

  it('leaves the mode of an existing database and backup folder alone', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'shared.db');
    const backups = path.join(dir, 'backups');
    const first = await openDatabase({ path: file, logger: false, handleSignals: false });
    await first.close();
    fs.chmodSync(file, 0o640);
    fs.mkdirSync(backups, { mode: 0o750 });
    fs.chmodSync(backups, 0o750);
    const db = await openDatabase({ path: file, logger: false, handleSignals: false });
    await db.backup();
    await db.close();
    expect(mode(file)).toBe('640');
    expect(mode(backups)).toBe('750');
  });
});
