/**
 * Full disks for the ENOSPC tests, two ways:
 *
 * - a real one: a small tmpfs, mounted when the tests run as root (`tmpfsUnavailable` says
 *   why not otherwise; those tests are skipped with that reason printed);
 * - an injected one: the walrec shim (test/crash/shim) fails writes to the files of one
 *   folder with ENOSPC, in a child process, so that the same case always runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildShim, REPO_ROOT, shimEnv } from '../crash/recorder.js';

/** Why no tmpfs can be mounted here, or undefined when one can. */
export const tmpfsUnavailable: string | undefined = (() => {
  if (process.platform !== 'linux') return `tmpfs tests need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'not running as root, so no tmpfs can be mounted';
  let probe: SmallDisk | undefined;
  try {
    probe = mountTmpfs(64 * 1024);
    return undefined;
  } catch (error) {
    return `mount -t tmpfs failed: ${(error as Error).message.split('\n')[0]}`;
  } finally {
    probe?.unmount();
  }
})();

if (tmpfsUnavailable !== undefined) {
  process.stderr.write(`[small-disk] the tmpfs variants are skipped: ${tmpfsUnavailable}\n`);
}

/** A mounted tmpfs. */
export interface SmallDisk {
  /** Its mount point. */
  dir: string;
  /** Fills it so that about `bytes` stay free (a filler file, removed by `free()`). */
  leaveFree(bytes: number): void;
  /** Removes the filler. */
  free(): void;
  /** Unmounts it and removes the mount point. */
  unmount(): void;
}

/** Mounts a tmpfs of `bytes` (rounded up to pages by the kernel) on a fresh folder. */
export function mountTmpfs(bytes: number): SmallDisk {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walguard-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir], {
      stdio: 'pipe',
    });
  } catch (error) {
    fs.rmdirSync(dir);
    throw error;
  }
  const filler = path.join(dir, '.filler');
  return {
    dir,
    leaveFree(free: number) {
      fs.rmSync(filler, { force: true });
      const available = fs.statfsSync(dir).bavail * fs.statfsSync(dir).bsize;
      const size = Math.max(0, available - free);
      const fd = fs.openSync(filler, 'w');
      try {
        const chunk = Buffer.alloc(64 * 1024, 1);
        for (let written = 0; written < size; ) {
          written += fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - written));
        }
      } finally {
        fs.closeSync(fd);
      }
    },
    free() {
      fs.rmSync(filler, { force: true });
    },
    unmount() {
      // Lazy: libsql leaks the descriptors of closed connections (libsql-js #228), which would
      // keep a plain umount busy; the memory goes once the last descriptor does.
      spawnSync('umount', ['-l', dir], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** What `runRecoveryChild` printed. */
export interface ChildOutcome {
  /** True when the operation succeeded. */
  ok: boolean;
  /** The error's code when it failed (`DISK_FULL`, `SQLITE_FULL`, `ENOSPC`, …). */
  code?: string;
  /** The error's message. */
  message?: string;
  /** Operation-specific facts. */
  [key: string]: unknown;
}

/**
 * Runs test/durability/fixtures/recovery-child.ts `op` with `args` in a child process, under
 * the shim when `enospcAfterBytes` is given (writes to files in `shimDir` past that many bytes
 * fail with ENOSPC), and returns its one-line JSON report.
 */
export function runRecoveryChild(
  op: string,
  args: Record<string, unknown>,
  shim?: { dir: string; enospcAfterBytes: number },
): ChildOutcome {
  const env: Record<string, string> = { ...(process.env as Record<string, string>) };
  if (shim !== undefined) {
    buildShim();
    Object.assign(env, shimEnv({ dir: shim.dir, enospcAfterBytes: shim.enospcAfterBytes }));
  }
  const script = path.join(REPO_ROOT, 'test/durability/fixtures/recovery-child.ts');
  const child = spawnSync(process.execPath, ['--import', 'tsx', script, op, JSON.stringify(args)], {
    cwd: REPO_ROOT,
    env,
    encoding: 'utf8',
  });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as ChildOutcome;
  } catch {
    throw new Error(
      `recovery-child ${op} exited with ${child.status ?? child.signal} and no report:\n${child.stderr}\n${child.stdout}`,
    );
  }
}
