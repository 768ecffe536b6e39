/**
 * Backups (restore is `restore.ts`).
 *
 * Strategy for a backup: `VACUUM INTO` a temporary name in the backup folder, from a child
 * process of its own (see `child-task.ts`) — an online, transactionally consistent copy taken
 * from a WAL read snapshot, so the app's writer keeps committing meanwhile, and the copy is
 * encrypted with the same key. Then: fsync the copy, verify it with `quick_check` in another
 * fresh process, write its key file (a passphrase-encrypted backup is useless without its
 * salt) and its manifest beside it, rename all three to their final names, the backup last,
 * fsync the folder, and prune by the retention policy.
 *
 * Names and identity. A backup is `<database file name>.<UTC timestamp>.db` — the full file
 * name, so `app.db` and `app.sqlite` never share names — with `<backup>.json` beside it, its
 * manifest: the database's file name, canonical path and identity (`database-identity.ts`),
 * the time and size. A backup belongs to a database when the manifest's file name is the
 * database's and its identity is the database's (when either has none: its path is). Backups
 * written before manifests existed (`<name without extension>.<UTC timestamp>.db`, or any
 * backup without a manifest) are *legacy*: they are listed for every database whose name
 * fits, restorable by hand, never used by automatic recovery, and never pruned — their
 * database cannot be told, and retention only ever deletes what is provably its own.
 *
 * Invariants:
 * - A file named like a backup is complete and verified: the rename is the last step.
 * - Pruning removes only backups whose manifest names this database at this path (and their
 *   key files and manifests), never the live database, never a legacy backup; the newest
 *   backup is never pruned (`keepLast` >= 1).
 * - Files are created 0600, the backup folder 0700 when walguard creates it (an existing
 *   folder keeps its mode).
 * - Temp files of a backup whose process died (`…db.tmp-<pid>`, killed mid-copy) are removed
 *   at the next backup or open of the database; the copier itself dies with its parent.
 *
 * Not guaranteed: a backup holds what was committed when its snapshot began; writes
 * acknowledged after that are only in the live database (and the next backup). A crash
 * between the final renames can leave a backup without its manifest (then it is treated as
 * legacy) or a manifest without its backup (ignored).
 */
import { mkdir, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { WalguardError } from '../errors.js';
import {
  formatBackupFileName,
  parseBackupFileName,
  type RetentionPolicy,
  selectBackupsToPrune,
} from './backup-retention.js';
import { canonicalPath } from './canonical-path.js';
import { runChildTask } from './child-task.js';
import { readIdentity } from './database-identity.js';
import {
  copyFileDurably,
  fileError,
  fsyncDirectory,
  pathExists,
  processIsAlive,
  writeFileAtomically,
} from './fs-sync.js';
import { deriveKey, keyFilePath, readKeyFile } from './key-file.js';

/** The database a backup is of. */
export interface BackupDatabase {
  /** Its file name (the backups' name prefix), e.g. `app.db`. */
  name: string;
  /** Its canonical path. */
  path: string;
  /** Its identity (`database-identity.ts`), when it has one. */
  id?: string | undefined;
}

/** Where backups go, whose they are, and how many are kept. */
export interface BackupTarget extends RetentionPolicy {
  /** The backup folder (created, 0700, when missing). */
  dir: string;
  /** The database backed up. */
  database: BackupDatabase;
}

/** What `<backup>.json` says. */
export interface BackupManifest {
  /** `walguard-backup/1`. */
  format: 'walguard-backup/1';
  /** The database the backup is of. */
  database: { name: string; path: string; id: string | null };
  /** When it was taken, ISO 8601 UTC. */
  takenAt: string;
  /** Its size in bytes. */
  bytes: number;
  /** Whether a key file is kept beside it. */
  keyFile: boolean;
}

/** A backup on disk. */
export interface BackupFile {
  /** Its path. */
  path: string;
  /** When it was taken (from its name). */
  takenAt: Date;
  /** Its size in bytes. */
  bytes: number;
  /** No manifest: its database is known by its name alone (see the file header). */
  legacy: boolean;
  /** Its manifest, when it has one. */
  manifest: BackupManifest | undefined;
  /** Whether retention may delete it: its manifest names this database at this path. */
  prunable: boolean;
}

/** The result of `takeBackup`. */
export interface BackupResult {
  /** Its path. */
  path: string;
  /** When it was taken. */
  takenAt: Date;
  /** Its size in bytes. */
  bytes: number;
  /** How long it took, in ms. */
  durationMs: number;
  /** Backups removed by the retention policy. */
  pruned: string[];
}

/** How to unlock a database or backup: a raw key, or a passphrase with the key file beside it. */
export type KeySource = { key: string } | { passphrase: string } | undefined;

const MANIFEST_FORMAT = 'walguard-backup/1';

/** The manifest file of a backup: `<backup>.json`. */
export function manifestPath(backupPath: string): string {
  return `${backupPath}.json`;
}

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

/** The database at `dbPath` as its backups name it: file name, canonical path, identity. */
export async function backupDatabaseOf(dbPath: string): Promise<BackupDatabase> {
  let canonical: string;
  try {
    canonical = await canonicalPath(dbPath);
  } catch (error) {
    throw fileError(`Cannot resolve ${dbPath}`, error, { path: dbPath });
  }
  const identity = await readIdentity(canonical);
  return { name: path.basename(canonical), path: canonical, id: identity?.id };
}

/** The backup name prefix of a database: its full file name (`app.db`). */
export function backupNameFor(dbPath: string): string {
  return path.basename(dbPath);
}

/** The name legacy backups of a database were given: its file name without extension. */
export function legacyBackupName(databaseName: string): string {
  return databaseName.replace(/\.[^.]*$/, '') || 'db';
}

/** Writes a verified backup of `dbPath`; see the file header for the steps. */
export async function takeBackup(
  dbPath: string,
  key: string | undefined,
  target: BackupTarget,
  now = new Date(),
): Promise<BackupResult> {
  const started = performance.now();
  const { database, dir } = target;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw fileError(`Cannot create the backup folder ${dir}`, error, { dir });
  }
  await removeBackupLeftovers(dir, database.name);
  const final = path.join(dir, formatBackupFileName(database.name, now));
  const temp = `${final}.tmp-${process.pid}`;
  const tempKeyFile = `${temp}.keyinfo`;
  const tempManifest = `${temp}.json`;
  const discard = () =>
    Promise.all(
      [temp, `${temp}-journal`, tempKeyFile, tempManifest].map((f) => rm(f, { force: true })),
    ).catch(() => {});
  // The child creates the copy (and the -journal VACUUM INTO writes it through) 0600: its
  // umask is 0077.
  const copied = await runChildTask({ op: 'vacuum-into', source: dbPath, dest: temp, key });
  if (!copied.ok) {
    await discard();
    throw new WalguardError(
      copied.code === 'SQLITE_FULL' || copied.code === 'ENOSPC' ? 'DISK_FULL' : 'IO_ERROR',
      `The backup copy of ${dbPath} failed: ${copied.message}`,
      { details: { code: copied.code } },
    );
  }
  const verdict = await runChildTask({ op: 'check', path: temp, key });
  if (!verdict.ok || verdict.messages?.join() !== 'ok') {
    // A copy that fails its own check is not user data: the live database is untouched.
    await discard();
    throw new WalguardError(
      'CORRUPT',
      `The backup copy failed its quick_check and was discarded: ${verdict.ok ? verdict.messages?.slice(0, 3).join('; ') : verdict.message}`,
    );
  }
  const bytes = copied.bytes ?? 0;
  try {
    const keyFile = keyFilePath(dbPath);
    const hasKeyFile = await pathExists(keyFile);
    if (hasKeyFile) await copyFileDurably(keyFile, tempKeyFile);
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      database: { name: database.name, path: database.path, id: database.id ?? null },
      takenAt: now.toISOString(),
      bytes,
      keyFile: hasKeyFile,
    };
    await writeFileAtomically(tempManifest, `${JSON.stringify(manifest, null, 2)}\n`);
    // Key file and manifest first: a file named like a backup always has them.
    if (hasKeyFile) await rename(tempKeyFile, keyFilePath(final));
    await rename(tempManifest, manifestPath(final));
    await rename(temp, final);
    await fsyncDirectory(dir);
  } catch (error) {
    await discard();
    throw fileError(`Cannot finish the backup ${final}`, error, { path: final });
  }
  const pruned = await pruneBackups(target, now);
  return { path: final, takenAt: now, bytes, durationMs: performance.now() - started, pruned };
}

/** Reads a backup's manifest; undefined when there is none or it is not one. */
export async function readManifest(backupPath: string): Promise<BackupManifest | undefined> {
  let text: string;
  try {
    text = await readFile(manifestPath(backupPath), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError(`Cannot read ${manifestPath(backupPath)}`, error);
  }
  try {
    const m = JSON.parse(text) as BackupManifest;
    if (m.format === MANIFEST_FORMAT && typeof m.database?.name === 'string') return m;
  } catch {
    // Not JSON: as if there were none.
  }
  return undefined;
}

/** Whether a manifest's database is `db` (see the file header). */
export function manifestBelongsTo(manifest: BackupManifest, db: BackupDatabase): boolean {
  if (manifest.database.name !== db.name) return false;
  if (manifest.database.id && db.id) return manifest.database.id === db.id;
  return manifest.database.path === db.path;
}

/**
 * The backups of `db` in `dir`, newest first: those whose manifest names it, and legacy ones
 * (no manifest) whose name fits it.
 */
export async function listBackups(dir: string, db: BackupDatabase): Promise<BackupFile[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw fileError(`Cannot list the backup folder ${dir}`, error, { dir });
  }
  const names = new Set([db.name, legacyBackupName(db.name)]);
  const backups: BackupFile[] = [];
  for (const entry of entries) {
    const parsed = parseBackupFileName(entry);
    if (parsed === null || !names.has(parsed.name)) continue;
    const file = path.join(dir, entry);
    const manifest = await readManifest(file);
    if (manifest !== undefined && !manifestBelongsTo(manifest, db)) continue;
    let bytes: number;
    try {
      bytes = (await stat(file)).size;
    } catch {
      continue; // pruned meanwhile
    }
    backups.push({
      path: file,
      takenAt: parsed.takenAt,
      bytes,
      legacy: manifest === undefined,
      manifest,
      prunable: manifest !== undefined && manifest.database.path === db.path,
    });
  }
  return backups.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime());
}

/** Removes this database's backups beyond the retention policy, with their key files and manifests. */
async function pruneBackups(target: BackupTarget, now: Date): Promise<string[]> {
  const backups = (await listBackups(target.dir, target.database)).filter((b) => b.prunable);
  const doomed = selectBackupsToPrune(backups, target, now);
  for (const file of doomed) {
    // The backup first: once it is gone, its key file and manifest are ignored leftovers.
    await unlink(file);
    await unlink(keyFilePath(file)).catch(() => {});
    await unlink(manifestPath(file)).catch(() => {});
  }
  if (doomed.length > 0) await fsyncDirectory(target.dir);
  return doomed;
}

/**
 * A backup temp file name: `<backup name>.tmp-<pid>`, then `-journal` (VACUUM INTO writes its
 * copy through a rollback journal), `.keyinfo` or `.json`, then a `writeFileAtomically` temp
 * suffix.
 */
const TEMP_NAME = /^(.+)\.tmp-(\d+)(?:-journal|\.keyinfo|\.json)?(?:\.\d+\.tmp)?$/;

/**
 * Removes the temp files that backups of `databaseName` (or legacy backups of its name) left in
 * `dir` when their process died. A live process's temp files are left alone: its backup may
 * be running.
 */
export async function removeBackupLeftovers(dir: string, databaseName: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  const names = new Set([databaseName, legacyBackupName(databaseName)]);
  const removed: string[] = [];
  for (const entry of entries) {
    const match = TEMP_NAME.exec(entry);
    if (match === null) continue;
    const parsed = parseBackupFileName(match[1]!);
    const pid = Number(match[2]);
    if (parsed === null || !names.has(parsed.name) || pid === process.pid) continue;
    if (processIsAlive(pid)) continue;
    await rm(path.join(dir, entry), { force: true });
    removed.push(path.join(dir, entry));
  }
  return removed;
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

/** What `newestGoodBackup` found. */
export interface GoodBackupSearch {
  /** The newest backup of the database that passes its own check, if any. */
  backup: BackupFile | undefined;
  /** Backups of the database tried and found unusable, with why. */
  rejected: { path: string; reason: string }[];
  /** Legacy backups not considered (their database cannot be told). */
  legacy: string[];
}

/** The newest backup of `db` that passes its own check (legacy backups are not considered). */
export async function newestGoodBackup(
  dir: string,
  db: BackupDatabase,
  source: KeySource,
): Promise<GoodBackupSearch> {
  const all = await listBackups(dir, db);
  const search: GoodBackupSearch = {
    backup: undefined,
    rejected: [],
    legacy: all.filter((b) => b.legacy).map((b) => b.path),
  };
  for (const backup of all.filter((b) => !b.legacy)) {
    try {
      const key = await keyFor(backup.path, source);
      const check = await verifyBackup(backup.path, key);
      if (check.ok) {
        search.backup = backup;
        return search;
      }
      search.rejected.push({ path: backup.path, reason: check.messages.slice(0, 2).join('; ') });
    } catch (error) {
      // A backup whose key file is missing or whose key does not match is not usable: try older.
      search.rejected.push({ path: backup.path, reason: (error as Error).message });
    }
  }
  return search;
}

/** True when `file` exists. */
export async function exists(file: string): Promise<boolean> {
  return pathExists(file).catch(() => false);
}
