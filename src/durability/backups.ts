/**
 * Backups (restore is `restore.ts`).
 *
 * Strategy for a backup: `VACUUM INTO` a temporary name in the backup folder, from a child
 * process of its own (see `child-task.ts`) — an online, transactionally consistent copy taken
 * from a WAL read snapshot, so the app's writer keeps committing meanwhile, and the copy is
 * encrypted with the same key. Then: fsync the copy, verify it with `quick_check` in another
 * fresh process, copy the key file beside it (a passphrase-encrypted backup is useless
 * without its salt), rename the copy to `<name>.<UTC timestamp>.db` atomically, fsync the
 * folder, and prune by the retention policy.
 *
 * Invariants:
 * - A file named like a backup is complete and verified: the rename is the last step, and
 *   its key file is in place before it.
 * - Pruning removes only files this module named as backups (and their key files), never the
 *   live database; the newest backup is never pruned (`keepLast` >= 1).
 *
 * Not guaranteed: a backup holds what was committed when its snapshot began; writes
 * acknowledged after that are only in the live database (and the next backup).
 */
import { copyFile, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { WalguardError } from '../errors.js';
import {
  formatBackupFileName,
  parseBackupFileName,
  type RetentionPolicy,
  selectBackupsToPrune,
} from './backup-retention.js';
import { runChildTask } from './child-task.js';
import { fsyncDirectory, fsyncFile } from './fs-sync.js';
import { deriveKey, keyFilePath, readKeyFile } from './key-file.js';

/** Where backups go and how many are kept. */
export interface BackupTarget extends RetentionPolicy {
  /** The backup folder (created when missing). */
  dir: string;
  /** The file name prefix, usually the database's base name without extension. */
  name: string;
}

/** A backup on disk. */
export interface BackupFile {
  /** Its path. */
  path: string;
  /** When it was taken (from its name). */
  takenAt: Date;
  /** Its size in bytes. */
  bytes: number;
}

/** The result of `takeBackup`. */
export interface BackupResult extends BackupFile {
  /** How long it took, in ms. */
  durationMs: number;
  /** Backups removed by the retention policy. */
  pruned: string[];
}

/** How to unlock a database or backup: a raw key, or a passphrase with the key file beside it. */
export type KeySource = { key: string } | { passphrase: string } | undefined;

/** The key for the database (or backup) at `file`, from its key source. */
export async function keyFor(file: string, source: KeySource): Promise<string | undefined> {
  if (source === undefined) return undefined;
  if ('key' in source) return source.key;
  const info = await readKeyFile(file);
  if (info === undefined) {
    throw new WalguardError(
      'KEY_REQUIRED',
      `The key file ${keyFilePath(file)} is missing: it holds the salt that turns the passphrase into the key. Restore it from a backup (each backup keeps a copy beside it)`,
      { details: { path: keyFilePath(file) } },
    );
  }
  return deriveKey(source.passphrase, info);
}

/** Writes a verified backup of `dbPath`; see the file header for the steps. */
export async function takeBackup(
  dbPath: string,
  key: string | undefined,
  target: BackupTarget,
  now = new Date(),
): Promise<BackupResult> {
  const started = performance.now();
  await mkdir(target.dir, { recursive: true });
  const final = path.join(target.dir, formatBackupFileName(target.name, now));
  const temp = `${final}.tmp-${process.pid}`;
  const copied = await runChildTask({ op: 'vacuum-into', source: dbPath, dest: temp, key });
  if (!copied.ok) {
    await unlink(temp).catch(() => {});
    throw new WalguardError(
      copied.code === 'SQLITE_FULL' ? 'DISK_FULL' : 'IO_ERROR',
      `The backup copy of ${dbPath} failed: ${copied.message}`,
      { details: { code: copied.code } },
    );
  }
  const verdict = await runChildTask({ op: 'check', path: temp, key });
  if (!verdict.ok || verdict.messages?.join() !== 'ok') {
    // A copy that fails its own check is not user data: the live database is untouched.
    await unlink(temp).catch(() => {});
    throw new WalguardError(
      'CORRUPT',
      `The backup copy failed its quick_check and was discarded: ${verdict.ok ? verdict.messages?.slice(0, 3).join('; ') : verdict.message}`,
    );
  }
  const keyFile = keyFilePath(dbPath);
  if (await exists(keyFile)) {
    await copyFile(keyFile, keyFilePath(final));
    await fsyncFile(keyFilePath(final));
  }
  await rename(temp, final);
  await fsyncDirectory(target.dir);
  const pruned = await pruneBackups(target, now);
  return {
    path: final,
    takenAt: now,
    bytes: copied.bytes ?? 0,
    durationMs: performance.now() - started,
    pruned,
  };
}

/** The backup file name prefix of a database: its base name without extension. */
export function backupNameFor(dbPath: string): string {
  return path.basename(dbPath).replace(/\.[^.]*$/, '') || 'db';
}

/** The backups of `name` in `dir`, newest first. */
export async function listBackups(dir: string, name: string): Promise<BackupFile[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const backups: BackupFile[] = [];
  for (const entry of entries) {
    const parsed = parseBackupFileName(entry);
    if (parsed === null || parsed.name !== name) continue;
    const file = path.join(dir, entry);
    backups.push({ path: file, takenAt: parsed.takenAt, bytes: (await stat(file)).size });
  }
  return backups.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime());
}

/** Removes backups beyond the retention policy, with their key files. */
async function pruneBackups(target: BackupTarget, now: Date): Promise<string[]> {
  const backups = await listBackups(target.dir, target.name);
  const doomed = selectBackupsToPrune(backups, target, now);
  for (const file of doomed) {
    await unlink(file);
    await unlink(keyFilePath(file)).catch(() => {});
  }
  if (doomed.length > 0) await fsyncDirectory(target.dir);
  return doomed;
}

/** Runs `quick_check` on a backup in a child process. */
export async function verifyBackup(
  file: string,
  key: string | undefined,
): Promise<{ ok: boolean; messages: string[] }> {
  const verdict = await runChildTask({ op: 'check', path: file, key });
  if (!verdict.ok) return { ok: false, messages: [`${verdict.code}: ${verdict.message}`] };
  const messages = verdict.messages ?? [];
  return { ok: messages.join() === 'ok', messages };
}

/** The newest backup that passes its own check, or undefined. */
export async function newestGoodBackup(
  dir: string,
  name: string,
  source: KeySource,
): Promise<BackupFile | undefined> {
  for (const backup of await listBackups(dir, name)) {
    try {
      const key = await keyFor(backup.path, source);
      if ((await verifyBackup(backup.path, key)).ok) return backup;
    } catch {
      // A backup whose key file is missing or whose key does not match is not usable: try older.
    }
  }
  return undefined;
}

/** True when `file` exists. */
export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
