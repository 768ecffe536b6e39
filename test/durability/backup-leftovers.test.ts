/**
 * A killed backup leaves nothing behind for good (issue 10, defect 6): the copier process dies
 * with the process that started it, and the temp files of dead processes are removed at the
 * next backup or open.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/index.js';
import { buildShim, REPO_ROOT, shimEnv } from '../crash/recorder.js';
import { delay, tempDir } from '../helpers.js';

async function seed(file: string, rows: number): Promise<void> {
  const db = await openDatabase<{ t: { id: number; body: string } }>({
    path: file,
    logger: false,
    handleSignals: false,
  });
  await sql`create table t (id integer primary key, body text not null)`.execute(db.kysely);
  await db.write((k) =>
    Array.from({ length: rows }, (_, id) =>
      k.insertInto('t').values({ id, body: 'b'.repeat(1000) }),
    ),
  );
  await db.close();
}

/** A pid that no process has now: a child that already exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  return Number(child.stdout);
}

/** The pid of the process that has `file` open, if any (scans /proc). */
function holderOf(file: string): number | undefined {
  for (const pid of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === file) return Number(pid);
      } catch {
        // The descriptor closed meanwhile.
      }
    }
  }
  return undefined;
}

/** True while `pid` runs (a zombie waiting to be reaped counts as ended). */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

describe('a killed backup', () => {
  it('takes its copier process down with it, and its temp file is removed by the next backup', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const backups = path.join(dir, 'backups');
    fs.mkdirSync(backups);
    await seed(file, 3000);
    buildShim();
    // Every fsync in the backup folder takes 6 s: the copier (VACUUM INTO syncs its journal
    // before it writes a page) is still at work when we kill.
    const parent = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(import.meta.dirname, 'fixtures/recovery-child.ts'),
        'backup',
        JSON.stringify({ path: file, dir: backups }),
      ],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, ...shimEnv({ dir: backups, fsyncDelayUs: 6_000_000 }) },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let temp: string | undefined;
    for (let i = 0; i < 600 && temp === undefined; i++) {
      await delay(50);
      const name = fs.readdirSync(backups).find((n) => n.endsWith(`.tmp-${parent.pid}`));
      if (name !== undefined) temp = path.join(backups, name);
    }
    expect(temp, 'the backup never started copying').toBeDefined();
    let copier: number | undefined;
    for (let i = 0; i < 40 && copier === undefined; i++) {
      copier = holderOf(temp!);
      if (copier === undefined) await delay(50);
    }
    expect(copier, 'no process holds the temp file').toBeDefined();
    expect(copier).not.toBe(parent.pid);

    parent.kill('SIGKILL');
    await new Promise((resolve) => parent.once('exit', resolve));
    let alive = true;
    for (let i = 0; i < 30 && alive; i++) {
      await delay(50);
      alive = running(copier!);
    }
    expect(alive, `the copier ${copier} outlived its parent`).toBe(false);
    expect(fs.existsSync(temp!)).toBe(true);

    const db = await openDatabase({
      path: file,
      logger: false,
      handleSignals: false,
      backup: { dir: backups },
    });
    const backup = await db.backup();
    await db.close();
    expect(fs.readdirSync(backups).filter((n) => n.includes('.tmp'))).toEqual([]);
    expect(fs.existsSync(backup.path)).toBe(true);
  });

  it('leftover temp files of dead processes (today’s names and the new ones) go at the next open; a live process’s stay', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const backups = path.join(dir, 'backups');
    await seed(file, 10);
    fs.mkdirSync(backups, { recursive: true });
    const dead = deadPid();
    const leftovers = [
      `app.20260101T000000.000Z.db.tmp-${dead}`,
      `app.db.20260101T000000.000Z.db.tmp-${dead}`,
    ];
    for (const name of leftovers) fs.writeFileSync(path.join(backups, name), 'partial copy');
    const restoreLeftover = path.join(dir, `app.db.restore-${dead}.tmp`);
    fs.writeFileSync(restoreLeftover, 'partial restore copy');
    // A backup in progress in a live process (this one's parent, which outlives the test).
    const live = `app.db.20260101T000001.000Z.db.tmp-${process.ppid}`;
    fs.writeFileSync(path.join(backups, live), 'being written');

    const db = await openDatabase({ path: file, logger: false, handleSignals: false });
    await db.close();
    expect(fs.readdirSync(backups).sort()).toEqual([live]);
    expect(fs.existsSync(restoreLeftover)).toBe(false);
  });
});
