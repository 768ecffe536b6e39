import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFresh, tempDir } from '../helpers.js';

const fixture = path.join(import.meta.dirname, '../fixtures/shutdown-child.ts');

function run(file: string, mode: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, file, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const waitFor = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (out.includes(text)) resolve();
      };
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        check();
      });
      check();
    });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, waitFor, exited, output: () => out };
}

describe('shutdown', () => {
  it('a script whose last step is await db.close() finishes closing and exits 0', async () => {
    const { spawnSync } = await import('node:child_process');
    const file = path.join(tempDir(), 'end.db');
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, '../fixtures/close-at-end.ts'), file],
      { encoding: 'utf8' },
    );
    expect(child.status, child.stderr).toBe(0);
    expect(child.stdout).toBe('closed\n');
    expect(readFresh(file, 'select n from t')).toEqual([{ n: 1 }]);
  });

  it('beforeExit closes the database: deferred writes queued when the script ends are persisted', async () => {
    const file = path.join(tempDir(), 'exit.db');
    const child = run(file, 'exit');
    const { code } = await child.exited;
    expect(code).toBe(0);
    expect(readFresh(file, 'select count(*) as n from t')).toEqual([{ n: 500 }]);
    expect(!fs.existsSync(`${file}-wal`) || fs.statSync(`${file}-wal`).size === 0).toBe(true);
  });

  it('beforeExit closes the database with handleSignals: false too, and no signal is hooked', async () => {
    const file = path.join(tempDir(), 'exit-quiet.db');
    const child = run(file, 'exit-no-signals');
    await child.waitFor('queued');
    const { code } = await child.exited;
    expect(code).toBe(0);
    expect(child.output()).toContain('SIGTERM listeners: 0');
    expect(readFresh(file, 'select count(*) as n from t')).toEqual([{ n: 500 }]);
  });

  it('a second signal while closing exits at once with the conventional status', async () => {
    const file = path.join(tempDir(), 'stuck.db');
    const child = run(file, 'stuck');
    await child.waitFor('stuck');
    child.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    child.child.kill('SIGTERM');
    const { code } = await child.exited;
    expect(code).toBe(143);
    expect(Date.now() - started).toBeLessThan(5000);
    // The unfinished transaction was never acknowledged, and is not there.
    expect(readFresh(file, 'select count(*) as n from t')).toEqual([{ n: 0 }]);
  });

  it('an app with its own signal handler owns shutdown: it can still write its last record, then closes', async () => {
    const file = path.join(tempDir(), 'app.db');
    const child = run(file, 'app-handler');
    await child.waitFor('ready');
    child.child.kill('SIGTERM');
    const { code } = await child.exited;
    expect(child.output()).toContain('app handler ran (1)');
    expect(child.output()).toContain('app closed');
    expect(code).toBe(0);
    expect(readFresh(file, 'select count(*) as n, min(n) as lo from t')).toEqual([
      { n: 301, lo: -100 },
    ]);
  });

  it('an app with its own signal handler gets the second signal too; walguard never closed under it', async () => {
    const file = path.join(tempDir(), 'app-twice.db');
    const child = run(file, 'app-handler-twice');
    await child.waitFor('ready');
    child.child.kill('SIGTERM');
    await child.waitFor('app handler ran (1)');
    await new Promise((r) => setTimeout(r, 300));
    child.child.kill('SIGTERM');
    const { code } = await child.exited;
    expect(code).toBe(3);
    expect(child.output()).toContain('closed: false');
  });
});
