import path from 'node:path';
import { sql } from 'kysely';
import Database from 'libsql';
import { describe, expect, it } from 'vitest';
import { openTemp, tempDir } from '../helpers.js';

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
