/**
 * Runs a short database task in a child process: `VACUUM INTO` for backups and
 * `quick_check` of a backup or restore candidate.
 *
 * Why a process and not the app's connections: libsql 0.5.29 leaks file descriptors on
 * `close()` of a connection that prepared statements (libsql-js #228/#230), so short-lived
 * connections must not live in the app's process; a backup of a large database must not
 * block the app's event loop; and a native panic on a damaged file (reading invalid UTF-8 as
 * TEXT aborts the process, DESIGN.md) must not take the app down. The key travels on stdin,
 * never in argv or the environment, where `ps` would show it.
 *
 * The child dies with its parent (`dieWithParent`): a watchdog thread in it notices that its
 * parent process is gone (its parent pid changes when it is re-parented) and kills it, even
 * while its main thread is inside a long native `VACUUM INTO`. Without it, a `kill -9` of the
 * app left the copier writing a full-size temp file nobody would ever rename or remove. The
 * temp files of a dead process are removed at the next backup or open (`backups.ts`).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { WalguardError } from '../errors.js';

/** A task for the child. */
export type ChildTask =
  /** Writes a consistent copy of `source` to `dest` (same key), then fsyncs it. */
  | { op: 'vacuum-into'; source: string; dest: string; key?: string | undefined }
  /** Runs `quick_check` (or `integrity_check` when `full`) on `path`. */
  | { op: 'check'; path: string; key?: string | undefined; full?: boolean };

/** The child's answer. */
export type ChildResult =
  | { ok: true; messages?: string[]; bytes?: number; userVersion?: number }
  | { ok: false; code: string; message: string };

/** Runs `task` in a fresh Node process and returns its result. */
export function runChildTask(task: ChildTask, timeoutMs = 10 * 60_000): Promise<ChildResult> {
  const source = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(
    new URL(`./child-task-entry.${source ? 'ts' : 'js'}`, import.meta.url),
  );
  const args = source
    ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, entry]
    : [entry];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: timeoutMs,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as ChildResult);
      } catch {
        reject(
          new WalguardError(
            'IO_ERROR',
            `A ${task.op} child process ended without a result (exit ${code ?? signal}): ${err.trim().slice(-500)}`,
          ),
        );
      }
    });
    child.stdin.end(JSON.stringify(task));
  });
}

/** How often the watchdog looks at the parent pid, in ms. */
const WATCHDOG_INTERVAL_MS = 100;

/**
 * Makes this (child) process die when its parent does: a watchdog thread checks the parent
 * pid every 100 ms and, once the process has been re-parented, sends SIGKILL to it. It runs in
 * a worker thread so that it works while the main thread is blocked in native code, and is
 * unref'd so that it never keeps the process alive. Call it first thing in a child entry.
 */
export function dieWithParent(): void {
  const watchdog = new Worker(
    `const parent = require('node:worker_threads').workerData;
     setInterval(() => {
       if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
     }, ${WATCHDOG_INTERVAL_MS});`,
    { eval: true, workerData: process.ppid },
  );
  watchdog.unref();
}
