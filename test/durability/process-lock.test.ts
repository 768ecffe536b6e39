import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'libsql';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireProcessLock, type ProcessLock } from '../../src/durability/process-lock.js';
import { WalguardError } from '../../src/errors.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const holderScript = fileURLToPath(new URL('./fixtures/lock-holder.ts', import.meta.url));

interface HolderLine {
  event: 'acquired' | 'locked' | 'released' | 'error';
  pid: number;
  ownerPid?: number;
  code?: string;
  message?: string;
  ms?: number;
}

/** A lock-holder child process and the JSON lines it has printed. */
interface Holder {
  child: ChildProcess;
  next(): Promise<HolderLine>;
}

const children: ChildProcess[] = [];

function startHolder(dbPath: string, waitMs = 0): Holder {
  const child = spawn(process.execPath, ['--import', 'tsx', holderScript, dbPath, String(waitMs)], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    child,
    async next() {
      const { value, done } = await lines.next();
      if (done) throw new Error(`holder ${child.pid} exited without reporting`);
      return JSON.parse(value) as HolderLine;
    },
  };
}

async function expectLocked(promise: Promise<unknown>): Promise<WalguardError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WalguardError);
  expect((error as WalguardError).code).toBe('LOCKED');
  return error as WalguardError;
}

let dir: string;
let dbPath: string;
const locks: ProcessLock[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'walguard-lock-'));
  dbPath = join(dir, 'app.db');
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  for (const lock of locks.splice(0)) await lock.release();
  await rm(dir, { recursive: true, force: true });
});

async function acquire(path = dbPath, waitMs = 0): Promise<ProcessLock> {
  const lock = await acquireProcessLock(path, { waitMs });
  locks.push(lock);
  return lock;
}

describe('acquireProcessLock', () => {
  it('lets one of two processes win; the other gets LOCKED naming the winner pid', async () => {
    const first = startHolder(dbPath);
    const won = await first.next();
    expect(won.event).toBe('acquired');
    expect(won.pid).toBe(first.child.pid);

    const second = startHolder(dbPath);
    const lost = await second.next();
    expect(lost).toMatchObject({ event: 'locked', code: 'LOCKED', ownerPid: first.child.pid });
    expect(lost.message).toContain(`process ${first.child.pid}`);
    const [exitCode] = await once(second.child, 'exit');
    expect(exitCode).toBe(1);
  });

  it('is taken over at once by another process after the owner is killed with SIGKILL', async () => {
    const owner = startHolder(dbPath);
    expect((await owner.next()).event).toBe('acquired');
    await expectLocked(acquireProcessLock(dbPath));

    owner.child.kill('SIGKILL');
    await once(owner.child, 'exit');
    // No waiting, no stale-lock cleanup: the kernel dropped the lock with the process.
    const successor = startHolder(dbPath, 0);
    const line = await successor.next();
    expect(line.event).toBe('acquired');

    // The dead owner's pid file was overwritten: a contender now names the successor.
    const error = await expectLocked(acquireProcessLock(dbPath));
    expect(error.details?.pid).toBe(successor.child.pid);
  });

  it('is acquired in this process within milliseconds of the owner being killed', async () => {
    const owner = startHolder(dbPath);
    expect((await owner.next()).event).toBe('acquired');
    owner.child.kill('SIGKILL');
    await once(owner.child, 'exit');
    const started = performance.now();
    const lock = await acquire(dbPath, 0);
    const latencyMs = performance.now() - started;
    expect(lock.released).toBe(false);
    expect(latencyMs).toBeLessThan(200);
  });

  it('rejects a second acquire in the same process with LOCKED naming this pid', async () => {
    const lock = await acquire();
    const error = await expectLocked(acquireProcessLock(dbPath));
    expect(error.details?.pid).toBe(process.pid);
    expect(error.message).toContain('this process');
    expect(lock.pid).toBe(process.pid);
  });

  it('rejects a concurrent double acquire in the same process: exactly one wins', async () => {
    const results = await Promise.allSettled([
      acquireProcessLock(dbPath),
      acquireProcessLock(dbPath),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    locks.push((won[0] as PromiseFulfilledResult<ProcessLock>).value);
    expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'LOCKED' });
  });

  it('is seen as busy by another SQLite connection in this thread and in a worker thread', async () => {
    const lock = await acquire();
    // Bypass the registry: ask SQLite directly, as another module or thread would.
    const other = new Database(lock.lockPath, { timeout: 0 });
    expect(() => other.exec('BEGIN EXCLUSIVE')).toThrow(/locked|busy/i);
    other.close();

    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const Database = require(workerData.libsql);
       const db = new Database(workerData.lockPath, { timeout: 0 });
       try { db.exec('BEGIN EXCLUSIVE'); parentPort.postMessage('acquired'); }
       catch (e) { parentPort.postMessage(e.code); }
       finally { db.close(); }`,
      {
        eval: true,
        workerData: { lockPath: lock.lockPath, libsql: join(repoRoot, 'node_modules/libsql') },
      },
    );
    const [answer] = await once(worker, 'message');
    expect(answer).toBe('SQLITE_BUSY');
    await once(worker, 'exit');

    // Still held after those contenders closed their connections.
    const child = startHolder(dbPath);
    expect(await child.next()).toMatchObject({ event: 'locked', ownerPid: process.pid });
  });

  it('can be re-acquired after release, here and by another process', async () => {
    const lock = await acquire();
    expect(existsSync(lock.pidPath)).toBe(true);
    await lock.release();
    expect(lock.released).toBe(true);
    expect(existsSync(lock.pidPath)).toBe(false);
    await lock.release(); // idempotent

    const again = await acquire();
    expect((await readFile(again.pidPath, 'utf8')).trim()).toBe(String(process.pid));
    await again.release();

    const child = startHolder(dbPath);
    expect((await child.next()).event).toBe('acquired');
    child.child.stdin!.write('release\n');
    expect((await child.next()).event).toBe('released');
    await once(child.child, 'exit');
    await acquire();
  });

  it('waits up to waitMs for the owner to release', async () => {
    const owner = startHolder(dbPath);
    expect((await owner.next()).event).toBe('acquired');
    setTimeout(() => owner.child.stdin!.write('release\n'), 150);
    const started = performance.now();
    const lock = await acquire(dbPath, 5_000);
    expect(lock.released).toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
  });

  it('fails after waitMs when the owner keeps the lock', async () => {
    const owner = startHolder(dbPath);
    expect((await owner.next()).event).toBe('acquired');
    const started = performance.now();
    const error = await expectLocked(acquireProcessLock(dbPath, { waitMs: 200 }));
    expect(performance.now() - started).toBeGreaterThanOrEqual(190);
    expect(error.details?.pid).toBe(owner.child.pid);
  });

  it('names the lock after the canonical path, so a symlink cannot take a second lock', async () => {
    const real = await mkdir(join(dir, 'real'), { recursive: true }).then(() => join(dir, 'real'));
    await symlink(real, join(dir, 'link'));
    const lock = await acquire(join(dir, 'link', 'app.db'));
    expect(lock.dbPath).toBe(join(real, 'app.db'));
    await expectLocked(acquireProcessLock(join(real, 'app.db')));
  });

  it('resolves a dangling symlink before locking: the link and its target share one lock, in this process and in another', async () => {
    const target = join(dir, 'target.db');
    const link = join(dir, 'link.db');
    await symlink(target, link);
    const viaLink = await acquire(link);
    expect(viaLink.dbPath).toBe(target);
    expect(viaLink.lockPath).toBe(`${target}.lock`);
    // What the first open does next: SQLite creates the target through the link.
    await writeFile(target, '');
    await expectLocked(acquireProcessLock(target));
    await expectLocked(acquireProcessLock(link));
    const other = startHolder(target);
    expect(await other.next()).toMatchObject({ event: 'locked', code: 'LOCKED' });
  });

  it('openDatabase through a dangling symlink in one process and through its target in another: the second gets LOCKED', async () => {
    const target = join(dir, 'target.db');
    const link = join(dir, 'link.db');
    await symlink(target, link);
    const app = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(new URL('../fixtures/hold-open.ts', import.meta.url)),
        link,
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(app);
    await new Promise<void>((resolve, reject) => {
      app.stdout!.on('data', (c: Buffer) => c.toString().includes('ready') && resolve());
      app.on('exit', (code) => reject(new Error(`hold-open exited early (${code})`)));
    });
    const { openDatabase } = await import('../../src/index.js');
    for (const path of [target, link]) {
      const error = await openDatabase({ path, logger: false, handleSignals: false }).then(
        async (db) => {
          await db.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error, path).toMatchObject({ code: 'LOCKED', details: { pid: app.pid } });
    }
  });

  it('a chain of symlinks, relative and dangling, resolves to the same lock as the target', async () => {
    await mkdir(join(dir, 'data'));
    await symlink('data/app.db', join(dir, 'first.db'));
    await symlink('first.db', join(dir, 'second.db'));
    const lock = await acquire(join(dir, 'second.db'));
    expect(lock.dbPath).toBe(join(dir, 'data', 'app.db'));
    await expectLocked(acquireProcessLock(join(dir, 'data', 'app.db')));
  });

  it('leaves only an empty lock file and the pid file beside the database', async () => {
    const lock = await acquire();
    expect((await stat(lock.lockPath)).size).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['app.db.lock', 'app.db.lock.pid']);
    await lock.release();
    expect(await readdir(dir)).toEqual(['app.db.lock']);
  });

  it('fails with IO_ERROR when the directory does not exist', async () => {
    await expect(acquireProcessLock(join(dir, 'missing', 'app.db'))).rejects.toMatchObject({
      code: 'IO_ERROR',
    });
  });

  it('rejects an in-memory or empty path with INVALID_OPTION', async () => {
    await expect(acquireProcessLock(':memory:')).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(acquireProcessLock('')).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});
