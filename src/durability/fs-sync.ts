/**
 * File helpers shared by the durability services: fsync of files and folders, durable copies,
 * atomic small-file writes, private (0600) file creation, and the one mapping of an OS error
 * to walguard's `DISK_FULL` / `IO_ERROR`.
 *
 * Invariants:
 * - Every file created here is created with mode 0600 (0700 for folders): the umask can only
 *   take bits away, so nothing here is ever readable by other users. An existing file's mode
 *   is never changed.
 * - Copies are made with `read`/`write`, never `copy_file_range`/`sendfile`: the power-loss
 *   recorder (test/crash/shim) sees every byte, and a full disk fails the copy where it
 *   happens, not in a later flush.
 */
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { WalguardError, type WalguardErrorDetails } from '../errors.js';

/** fsyncs a directory so that entries created, renamed or removed in it survive a power loss. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Windows cannot fsync a directory; elsewhere a failure is real.
    if (process.platform !== 'win32') throw error;
  } finally {
    await handle.close();
  }
}

/** fsyncs a file's data and metadata. Never call it on a live database file (see process-lock.ts: closing a descriptor drops this process's SQLite locks on it). */
export async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** OS error codes that mean "no space": the disk, or the user's quota. */
const NO_SPACE = new Set(['ENOSPC', 'EDQUOT']);

/**
 * The `WalguardError` for a failed file operation: `DISK_FULL` for ENOSPC/EDQUOT, `IO_ERROR`
 * for anything else. A `WalguardError` passes through unchanged.
 */
export function fileError(
  message: string,
  cause: unknown,
  details?: WalguardErrorDetails,
): WalguardError {
  if (cause instanceof WalguardError) return cause;
  const reason = cause === undefined ? '' : `: ${String((cause as Error).message ?? cause)}`;
  return new WalguardError(fileErrorCode(cause), `${message}${reason}`, { cause, details });
}

/** `DISK_FULL` for an OS error that means no space (ENOSPC, EDQUOT), else `IO_ERROR`. */
export function fileErrorCode(cause: unknown): 'DISK_FULL' | 'IO_ERROR' {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return code !== undefined && NO_SPACE.has(code) ? 'DISK_FULL' : 'IO_ERROR';
}

/** True when `file` exists (a dangling symlink counts as existing: it is a name). */
export async function pathExists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return false;
    }
    throw error;
  }
}

/** Creates `file` empty with mode 0600 if it does not exist; true when it was created. */
export async function createPrivateFile(file: string): Promise<boolean> {
  try {
    const handle = await open(file, 'wx', 0o600);
    await handle.close();
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** The chunk size of `copyFileDurably`. */
const COPY_CHUNK = 1024 * 1024;

/**
 * Copies `from` to a new file `to` (mode 0600; fails if `to` exists) with read/write, then
 * fsyncs it. A failed copy removes its partial `to`. Returns the bytes copied. Errors are
 * raw OS errors: the caller says what was being copied (`fileError`).
 */
export async function copyFileDurably(from: string, to: string): Promise<number> {
  const source = await open(from, 'r');
  let dest: Awaited<ReturnType<typeof open>> | undefined;
  try {
    dest = await open(to, 'wx', 0o600);
    const buffer = Buffer.allocUnsafe(COPY_CHUNK);
    let position = 0;
    for (;;) {
      const { bytesRead } = await source.read(buffer, 0, COPY_CHUNK, position);
      if (bytesRead === 0) break;
      for (let done = 0; done < bytesRead; ) {
        const { bytesWritten } = await dest.write(buffer, done, bytesRead - done, position + done);
        done += bytesWritten;
      }
      position += bytesRead;
    }
    await dest.sync();
    return position;
  } catch (error) {
    if (dest !== undefined) {
      await dest.close().catch(() => {});
      dest = undefined;
      await rm(to, { force: true }).catch(() => {});
    }
    throw error;
  } finally {
    await dest?.close();
    await source.close();
  }
}

/**
 * Writes `content` to `file` atomically: a temp file beside it (0600) written and fsynced,
 * renamed over `file`, the folder fsynced. A reader sees the old content or the new, never
 * half of it. Errors are raw OS errors.
 */
export async function writeFileAtomically(file: string, content: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    const handle = await open(temp, 'w', 0o600);
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => {});
    throw error;
  }
  await fsyncDirectory(path.dirname(file));
}

/** True when a process with this pid exists (signal 0 checks without signalling). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
