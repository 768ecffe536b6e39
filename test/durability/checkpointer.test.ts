import path from 'node:path';
import { sql } from 'kysely';
import Database from 'libsql';
import { describe, expect, it } from 'vitest';
import { openTemp, readFresh, rejection, tempDir } from '../helpers.js';
import { mountTmpfs, runRecoveryChild, tmpfsUnavailable } from './small-disk.js';

describe('checkpoint starvation', () => {
  it('a reader holding an old snapshot keeps TRUNCATE from finishing, and walguard reports it', async () => {
    const file = path.join(tempDir(), 'starve.db');
    const db = await openTemp<{ t: { v: string } }>({
      path: file,
      busyTimeoutMs: 50,
      checkpoint: { idleMs: 0 },
    });
    await sql`create table t (v text)`.execute(db.kysely);
    await db.kysely.insertInto('t').values({ v: 'a' }).execute();
    // Another connection opens a read transaction and keeps its snapshot.
    const reader = new Database(file);
    reader.exec('BEGIN');
    reader.prepare('select count(*) from t').all();
    await db.kysely.insertInto('t').values({ v: 'b' }).execute();
    const warnings: unknown[] = [];
    db.on('checkpoint', (e) => warnings.push(e));
    const blocked = await db.checkpoint('TRUNCATE');
    expect(blocked.busy).toBe(true);
    expect(db.stats().checkpointsBlocked).toBe(1);
    expect(db.stats().walBytes).toBeGreaterThan(0);
    reader.exec('COMMIT');
    const done = await db.checkpoint('TRUNCATE');
    expect(done.busy).toBe(false);
    expect(db.stats().walBytes).toBe(0);
    expect(warnings).toHaveLength(2);
    reader.close();
  });
});

describe('a checkpoint on a full disk', () => {
  it('rejects with DISK_FULL, not SQLite’s raw SQLITE_FULL (shim: ENOSPC once space is taken away)', () => {
    const dir = tempDir();
    const outcome = runRecoveryChild(
      'checkpoint',
      { path: path.join(dir, 'app.db'), rows: 300 },
      { dir, enospcAfterBytes: 0 },
    );
    expect(outcome).toMatchObject({ ok: false, code: 'DISK_FULL', name: 'WalguardError' });
  });

  it.skipIf(tmpfsUnavailable !== undefined)(
    'rejects with DISK_FULL on a real full disk (tmpfs), and the data is intact once space returns',
    async () => {
      const disk = mountTmpfs(3 * 1024 * 1024);
      try {
        const file = path.join(disk.dir, 'app.db');
        const db = await openTemp<{ t: { v: string } }>({
          path: file,
          walAutocheckpointPages: 0,
          checkpoint: { idleMs: 0 },
        });
        await sql`create table t (v text)`.execute(db.kysely);
        for (let i = 0; i < 20; i++) {
          await db.write((k) =>
            Array.from({ length: 50 }, () => k.insertInto('t').values({ v: 'x'.repeat(1000) })),
          );
        }
        disk.leaveFree(0);
        const error = await rejection(db.checkpoint('TRUNCATE'));
        expect(error.code).toBe('DISK_FULL');
        disk.free();
        await db.close();
        expect(readFresh(file, 'select count(*) as n from t')).toEqual([{ n: 1000 }]);
      } finally {
        disk.unmount();
      }
    },
  );
});
