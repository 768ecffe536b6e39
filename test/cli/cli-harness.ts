/**
 * Runs the built `walguard` bin (dist/cli/main.js) as an operator would, on real files.
 *
 * `ensureBuilt()` builds dist/ with `tsc -p tsconfig.build.json` when any source file is
 * newer than the bin (one build at a time across test workers, by a lock folder). Each run
 * gets a clean environment: no inherited `WALGUARD_*` variable can change what is tested.
 */
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { createKeyFile } from '../../src/durability/key-file.js';
import { openDatabase } from '../../src/index.js';
import { tempDir as makeTempDir } from '../helpers.js';

export const root = path.resolve(import.meta.dirname, '../..');
export const bin = path.join(root, 'dist/cli/main.js');

/** Newest modification time of the files under `dir` ending with `.ts`, in ms. */
function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function fresh(): boolean {
  try {
    return fs.statSync(bin).mtimeMs >= newestSource(path.join(root, 'src'));
  } catch {
    return false;
  }
}

/** Builds dist/ unless it is up to date. */
export async function ensureBuilt(): Promise<void> {
  if (fresh()) return;
  const lock = path.join(os.tmpdir(), 'walguard-cli-test-build.lock');
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      // Another worker builds; a lock older than two minutes was left by a killed run.
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > 120_000) fs.rmSync(lock, { recursive: true });
      } catch {
        // It went away meanwhile.
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    if (fresh()) return;
    const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
    await new Promise<void>((resolve, reject) => {
      // tsc emits even when another part of the tree has a type error; what matters here is
      // that the bin was written.
      execFile(
        process.execPath,
        [tsc, '-p', 'tsconfig.build.json'],
        { cwd: root },
        (error, out) => {
          if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs >= Date.now() - 120_000) resolve();
          else reject(new Error(`build failed: ${error?.message}\n${out}`));
        },
      );
    });
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/** What a run of the bin did. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (runs with --json). */
  json: Record<string, unknown> & {
    ok: boolean;
    exitCode: number;
    error?: { code: string; message: string };
  };
}

/** Runs `walguard …args` with a clean environment plus `env`, feeding `input` on stdin. */
export function walguard(
  args: string[],
  options: { env?: Record<string, string>; input?: string; cwd?: string } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: options.cwd ?? os.tmpdir(),
      env: { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      let json: Run['json'] = undefined as unknown as Run['json'];
      if (args.includes('--json')) {
        try {
          json = JSON.parse(stdout);
        } catch {
          reject(new Error(`--json output is not JSON:\n${stdout}\nstderr:\n${stderr}`));
          return;
        }
      }
      resolve({ code: code ?? -1, stdout, stderr, json });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A fresh temporary folder, removed after the test (see test/helpers.ts). */
export const tempDir = () => makeTempDir('walguard-cli-');

interface NotesDB {
  notes: { id: number; body: string };
}

/**
 * Creates a database with `rows` notes. A passphrase database gets a key file with cheap
 * scrypt parameters (N=2^14, ~60 ms a derivation instead of ~500 ms), which every later
 * derivation reads from the file.
 */
export async function makeDatabase(
  file: string,
  options: { rows?: number; passphrase?: string; key?: string } = {},
): Promise<void> {
  if (options.passphrase !== undefined) {
    await createKeyFile(file, options.passphrase, { params: { N: 2 ** 14 } });
  }
  const encryption =
    options.passphrase !== undefined
      ? { passphrase: options.passphrase }
      : options.key !== undefined
        ? { key: options.key }
        : undefined;
  const db = await openDatabase<NotesDB>({
    path: file,
    logger: false,
    handleSignals: false,
    encryption,
  });
  try {
    await sql`create table if not exists notes (id integer primary key, body text not null)`.execute(
      db.kysely,
    );
    const rows = options.rows ?? 50;
    if (rows > 0) {
      await db.write((k) =>
        Array.from({ length: rows }, (_, i) =>
          k.insertInto('notes').values({ id: i, body: `note-${i}-${'x'.repeat(200)}` }),
        ),
      );
    }
  } finally {
    await db.close();
  }
}

/** Overwrites three pages in the middle of a (checkpointed) database with random bytes. */
export function damagePages(file: string): void {
  const bytes = fs.readFileSync(file);
  const middle = Math.floor(bytes.length / 2 / 4096) * 4096;
  crypto.randomFillSync(bytes, middle, 4096 * 3);
  fs.writeFileSync(file, bytes);
}

/** Starts a process that holds `file` open (and so its lock) until killed. */
export async function holdOpen(
  file: string,
  env: Record<string, string> = {},
): Promise<{ pid: number; stop(): Promise<void> }> {
  const fixture = path.join(import.meta.dirname, 'fixtures/hold-open.mjs');
  const child = spawn(process.execPath, [fixture, file], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('ready')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`hold-open exited early (${code})`)));
  });
  return {
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        child.removeAllListeners('exit');
        child.on('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
