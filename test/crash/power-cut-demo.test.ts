/**
 * `npm run demo:power-cut` in a small mode, as a child process, so that the demo cannot rot
 * silently: walguard keeps every acknowledged message in every cut and every state opens and
 * passes integrity_check; the naive client's figures are there, and it loses acknowledged
 * messages (the control showing that the demo's checker sees a loss). And where the recorder
 * cannot be built, the demo says so in one line and exits non-zero.
 */
import { spawn } from 'node:child_process';
import { cpSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PowerCutReport, PowerCutSide } from '../../demo/power-cut.js';
import { tempDir } from '../helpers.js';
import { REPO_ROOT } from './recorder.js';

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node --import tsx demo/power-cut.ts ...args` in `cwd`. */
function runDemo(args: string[], cwd = REPO_ROOT, env: NodeJS.ProcessEnv = {}): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'demo/power-cut.ts', ...args], {
      cwd,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b;
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const CUTS = 24;

/** A side's figures are there: its run acknowledged messages at `synchronous`, it was cut `CUTS` times, its rate measured. */
function expectRan(side: PowerCutSide, driver: string, synchronous: number): void {
  expect(side.recorded.driver).toBe(driver);
  expect(side.recorded.synchronous).toBe(synchronous);
  expect(side.recorded.messages).toBeGreaterThan(0);
  expect(side.cuts).toBe(CUTS);
  expect(side.unrecorded).toHaveLength(1);
  expect(side.messagesPerSecond.median).toBeGreaterThan(0);
}

describe('npm run demo:power-cut', () => {
  it('--json: walguard loses no acknowledged message in any cut and every state passes integrity_check; the naive client loses some', async () => {
    const exit = await runDemo([
      '--json',
      '--cuts',
      String(CUTS),
      '--seconds',
      '0.5',
      '--sessions',
      '4',
      '--rate-runs',
      '1',
    ]);
    // The report comes first: when walguard loses something the demo still prints it, and
    // exits 1.
    expect(exit.stdout, exit.stderr).not.toBe('');
    const report = JSON.parse(exit.stdout) as PowerCutReport;
    expect(report.options).toEqual({ cuts: CUTS, seconds: 0.5, sessions: 4, rateRuns: 1 });

    const w = report.walguard;
    expectRan(w, 'walguard', 2);
    expect(w.messagesLost).toBe(0);
    expect(w.cutsLosingMessages).toBe(0);
    expect(w.failedToOpen).toBe(0);
    expect(w.failedIntegrityCheck).toBe(0);
    expect(w.partialMessages).toBe(0);

    const v = report.naive;
    expectRan(v, 'naive', 1);
    expect(v.cutsLosingMessages).toBeGreaterThan(0);
    expect(v.messagesLost).toBeGreaterThanOrEqual(v.cutsLosingMessages);
    expect(v.mostLostInOneCut).toBeGreaterThan(0);
    expect(v.failedToOpen).toBeTypeOf('number');
    expect(v.failedIntegrityCheck).toBeTypeOf('number');
    expect(report.walguardToNaiveRate.median).toBeGreaterThan(0);
    expect(exit.code, exit.stderr).toBe(0);
    // Five Node processes (the demo, two recorded runs, two rate runs): about 10 s on a quiet
    // 2-core machine, 20 s at load average 9; more room than the default 60 s for a machine
    // shared by many sessions (a full suite run at load 16 timed out at 60 s).
  }, 150_000);

  it('without a C compiler to build the recorder, it says so in one line and exits 1', async () => {
    // A copy of what the demo needs, without test/crash/build/: the recorder must be built.
    const root = tempDir('walguard-power-cut-nocc-');
    temps.push(root);
    for (const part of ['package.json', 'tsconfig.json', 'src', 'demo', 'scripts', 'test/crash']) {
      cpSync(join(REPO_ROOT, part), join(root, part), {
        recursive: true,
        filter: (from) => !from.includes(join('test', 'crash', 'build')),
      });
    }
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');

    const exit = await runDemo(['--cuts', '5'], root, { CC: '/nonexistent/cc' });
    expect(exit.code).toBe(1);
    expect(exit.stdout).toBe('');
    const lines = exit.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^power-cut demo: cannot build the power-loss recorder .*\/nonexistent\/cc' was not found; install gcc/,
    );
  });
});
