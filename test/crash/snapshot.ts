/**
 * The contents of the recorded folder before the workload starts: the base a
 * crash state is rebuilt on. Files whose inode the log names are matched to
 * the snapshot by inode number (a rename keeps it), then by name.
 */
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One regular file of the folder. */
export interface SnapshotFile {
  /** Name relative to the folder. */
  name: string;
  /** Inode number when the snapshot was taken. */
  ino: number;
  /** Full contents. */
  data: Buffer;
}

/** The folder's files before recording started. */
export interface Snapshot {
  /** Regular files, without the ones replay ignores. */
  files: readonly SnapshotFile[];
}

/** A folder that starts empty. */
export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({ files: Object.freeze([]) });

/**
 * Names a crash state never contains: SQLite's `-shm` wal-index (mmap'ed, not
 * seen by the shim, rebuilt from the WAL by recovery) and walrec's own files.
 */
export function isIgnoredName(name: string): boolean {
  const base = name.slice(name.lastIndexOf('/') + 1);
  return base.endsWith('-shm') || base.startsWith('.walrec-');
}

/** Reads the regular files of `dir` (not recursive), for a replay's starting point. */
export function takeSnapshot(dir: string): Snapshot {
  const files: SnapshotFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (isIgnoredName(name)) continue;
    const path = join(dir, name);
    const st = lstatSync(path);
    if (!st.isFile()) continue;
    files.push({ name, ino: st.ino, data: readFileSync(path) });
  }
  return { files };
}
