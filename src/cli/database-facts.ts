/**
 * Facts about a database read from the file system alone: sizes, modes, the WAL header, the
 * process lock, the backups. Nothing here opens the database with SQLite, and nothing here
 * creates a file (the lock is probed without creating `<db>.lock`).
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { probeProcessLock } from '../durability/process-lock.js';

/** A file's size and last change, or null when it does not exist. */
export interface FileFacts {
  /** Its path. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** When it was last written, ISO 8601. */
  modifiedAt: string;
}

/** `stat` of a file, or null when it does not exist. */
export function fileFacts(file: string): FileFacts | null {
  try {
    const s = statSync(file);
    return { path: file, bytes: s.size, modifiedAt: s.mtime.toISOString() };
  } catch {
    return null;
  }
}

/** What the `-wal` file's 32-byte header says. */
export interface WalHeader {
  /** Page size recorded in the WAL. */
  pageSize: number;
  /** Checkpoint sequence number: grows each time a checkpoint restarts the WAL. */
  checkpointSequence: number;
}

/**
 * Reads the WAL header, or null when there is no WAL (or it is shorter than its header).
 * The CLI holds no SQLite connection to the database, so opening the file here drops no
 * lock of this process (see file-inspect.ts).
 */
export function readWalHeader(dbPath: string): WalHeader | null {
  let fd: number;
  try {
    fd = openSync(`${dbPath}-wal`, 'r');
  } catch {
    return null;
  }
  try {
    const header = Buffer.alloc(32);
    if (readSync(fd, header, 0, 32, 0) < 32) return null;
    const magic = header.readUInt32BE(0);
    if (magic !== 0x377f0682 && magic !== 0x377f0683) return null;
    return { pageSize: header.readUInt32BE(8), checkpointSequence: header.readUInt32BE(12) };
  } finally {
    closeSync(fd);
  }
}

/** Who holds the process lock. */
export type LockFacts =
  | { held: false }
  | { held: true; pid: number | undefined }
  | { held: 'unknown'; error: string };

/** Who holds the process lock, probed without creating anything (see `probeProcessLock`). */
export async function probeLock(dbPath: string): Promise<LockFacts> {
  try {
    return await probeProcessLock(dbPath);
  } catch (error) {
    return { held: 'unknown', error: (error as Error).message };
  }
}

/**
 * A warning when `file` exists and other users can read it (group or world read bit), naming
 * its mode and the fix; undefined otherwise (and always on Windows, which has no such modes).
 */
export function readableByOthers(file: string): string | undefined {
  if (process.platform === 'win32') return undefined;
  let mode: number;
  try {
    mode = statSync(file).mode & 0o777;
  } catch {
    return undefined;
  }
  if ((mode & 0o044) === 0) return undefined;
  const who = (mode & 0o004) !== 0 ? 'every user' : 'its group';
  return `${file} can be read by other users (${who}: mode ${mode.toString(8)}; walguard creates its files 0600): chmod 600 ${file}`;
}
