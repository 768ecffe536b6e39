/**
 * Which database a file is: a random id kept beside it in `<db>.identity`, copied into the
 * manifest of every backup (`backups.ts`), so that backups name their database without
 * ambiguity and restore can refuse another database's backup.
 *
 * Where the id lives, and why beside the database rather than in it:
 * - Apps introspect their schema (Kysely's introspection, `sqlite_schema` checks, schema-diff
 *   tools that propose to drop unknown tables): a table of walguard's own would show up in all
 *   of them. SQLite's header has no free field (`application_id` and `user_version` belong to
 *   the app).
 * - Encrypted backups: an id inside the database could only be read with the key; beside the
 *   backup (its manifest) it is read, listed and pruned without one.
 * - Copies of the database file: `cp app.db copy.db` gives the copy no identity, so its first
 *   open gives it one of its own and the two never share backups. An id inside the file
 *   would travel with every copy, and a copy's retention could prune the original's backups.
 * - A new database always gets a fresh id, even where an old `<db>.identity` was left behind
 *   (the database deleted by hand): the new, empty database's backups can then never push the
 *   old database's backups out of retention.
 * - A restore keeps the identity (a backup of this database has this id) and writes it from
 *   the backup's manifest when the database had none (restoring after a disk loss).
 *
 * The file is JSON, `{"format":"walguard-identity/1","id","createdAt"}`, mode 0600, written
 * atomically (temp, fsync, rename, folder fsync). It holds nothing secret. A damaged or
 * missing one is replaced by a fresh id at the next open: only backups taken before that are
 * then matched by the database's path and file name instead (see `backups.ts`).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileError, writeFileAtomically } from './fs-sync.js';

/** A database's identity. */
export interface DatabaseIdentity {
  /** A random UUID, fixed for the database's life. */
  id: string;
  /** When the identity was made (the database created, or first opened by a walguard that
   * keeps identities), ISO 8601 UTC. */
  createdAt: string;
}

const FORMAT = 'walguard-identity/1';

/** The identity file of a database: `<dbPath>.identity`. */
export function identityFilePath(dbPath: string): string {
  return `${dbPath}.identity`;
}

/** Reads a database's identity; undefined when the file is missing or not a valid one. */
export async function readIdentity(dbPath: string): Promise<DatabaseIdentity | undefined> {
  let text: string;
  try {
    text = await readFile(identityFilePath(dbPath), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fileError(`Cannot read ${identityFilePath(dbPath)}`, error);
  }
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    if (
      parsed.format === FORMAT &&
      typeof parsed.id === 'string' &&
      /^[0-9a-f-]{36}$/.test(parsed.id) &&
      typeof parsed.createdAt === 'string'
    ) {
      return { id: parsed.id, createdAt: parsed.createdAt };
    }
  } catch {
    // Not JSON: treated as missing (see the file header).
  }
  return undefined;
}

/** Writes `identity` as the database's identity file (replacing any). */
export async function writeIdentity(dbPath: string, identity: DatabaseIdentity): Promise<void> {
  const file = identityFilePath(dbPath);
  try {
    await writeFileAtomically(
      file,
      `${JSON.stringify({ format: FORMAT, ...identity }, null, 2)}\n`,
    );
  } catch (error) {
    throw fileError(`Cannot write ${file}`, error, { path: file });
  }
}

/**
 * The identity of the database at `dbPath`: a fresh one for a new database (`fresh`), else the
 * one on disk, made when there is none. The caller holds the process lock.
 */
export async function ensureIdentity(
  dbPath: string,
  options: { fresh: boolean },
): Promise<DatabaseIdentity> {
  if (!options.fresh) {
    const existing = await readIdentity(dbPath);
    if (existing !== undefined) return existing;
  }
  const identity = { id: randomUUID(), createdAt: new Date().toISOString() };
  await writeIdentity(dbPath, identity);
  return identity;
}
