/**
 * Running a workload under the walrec shim: building the shim, the
 * environment that turns it on, and a one-call "record this command".
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Op, readOpLog } from './oplog.js';
import { type Snapshot, takeSnapshot } from './snapshot.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Root of the repository. */
export const REPO_ROOT = resolve(here, '..', '..');
/** The shim library built by scripts/build-shim.sh. */
export const SHIM_PATH = join(here, 'build', 'walrec.so');

/** Builds the shim if it is missing or stale (scripts/build-shim.sh); returns its path. */
export function buildShim(): string {
  execFileSync('bash', [join(REPO_ROOT, 'scripts', 'build-shim.sh')], { stdio: 'pipe' });
  if (!existsSync(SHIM_PATH)) throw new Error(`build-shim.sh did not produce ${SHIM_PATH}`);
  return SHIM_PATH;
}

/** The shim's settings; see test/crash/shim/walrec.c. */
export interface ShimOptions {
  /** Folder whose files are tracked (must exist). */
  dir: string;
  /** Operation log to append to; omit to record nothing (fault injection only). */
  log?: string;
  /** Sleep before each fsync of a tracked file, in microseconds (slow-disk profile). */
  fsyncDelayUs?: number;
  /** Writes past this many bytes fail with ENOSPC until `<dir>/.walrec-space-ok` exists. */
  enospcAfterBytes?: number;
  /** The Nth write (1-based) to a tracked file fails with EIO, once. */
  eioWriteN?: number;
  /** The Nth fsync (1-based) of a tracked fd fails with EIO, once. */
  eioFsyncN?: number;
}

/** Environment variables that load and configure the shim in a child process. */
export function shimEnv(options: ShimOptions): Record<string, string> {
  const env: Record<string, string> = {
    LD_PRELOAD: SHIM_PATH,
    WALREC_DIR: resolve(options.dir),
    // libuv may do fs I/O through io_uring, which no LD_PRELOAD library sees.
    UV_USE_IO_URING: '0',
  };
  if (options.log !== undefined) env.WALREC_LOG = resolve(options.log);
  if (options.fsyncDelayUs !== undefined) env.WALREC_FSYNC_DELAY_US = String(options.fsyncDelayUs);
  if (options.enospcAfterBytes !== undefined) {
    env.WALREC_ENOSPC_AFTER_BYTES = String(options.enospcAfterBytes);
  }
  if (options.eioWriteN !== undefined) env.WALREC_EIO_WRITE_N = String(options.eioWriteN);
  if (options.eioFsyncN !== undefined) env.WALREC_EIO_FSYNC_N = String(options.eioFsyncN);
  return env;
}

/** What {@link runTsUnderShim} returns. */
export interface RecordedRun {
  /** Exit status of the child. */
  status: number | null;
  /** Its standard output. */
  stdout: string;
  /** Its standard error. */
  stderr: string;
  /** The folder's contents before the run (the replay's base). */
  snapshot: Snapshot;
  /** The recorded operations (empty when no log was asked for). */
  ops: Op[];
}

/**
 * Runs `node --import tsx <script> ...args` with the shim loaded, after
 * creating `options.dir` and taking its snapshot; the log is replaced, not
 * appended to. Throws when the child fails, unless `allowFailure`.
 */
export function runTsUnderShim(
  script: string,
  args: readonly string[],
  options: ShimOptions & { allowFailure?: boolean; env?: Record<string, string> },
): RecordedRun {
  mkdirSync(options.dir, { recursive: true });
  if (options.log !== undefined) rmSync(options.log, { force: true });
  const snapshot = takeSnapshot(options.dir);
  const child = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env, ...shimEnv(options) },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (child.error) throw child.error;
  if (child.status !== 0 && !options.allowFailure) {
    throw new Error(
      `${script} exited with ${child.status ?? child.signal}\n${child.stderr}\n${child.stdout}`,
    );
  }
  const ops = options.log !== undefined && existsSync(options.log) ? readOpLog(options.log) : [];
  return { status: child.status, stdout: child.stdout, stderr: child.stderr, snapshot, ops };
}

/**
 * Runs `node --import tsx <script> ...args` (a path relative to the repository) without the
 * shim and resolves with its last stdout line parsed as JSON: how the harness's checking
 * processes report.
 */
export function runTsForJson<T>(script: string, args: readonly string[]): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, script), ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
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
    child.on('close', (code) => {
      try {
        resolvePromise(JSON.parse(out.trim().split('\n').pop() ?? '') as T);
      } catch {
        reject(new Error(`${script} ${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`));
      }
    });
  });
}
