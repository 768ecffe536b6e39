/**
 * The one name of a database file: its absolute path with every symlink resolved, including
 * a dangling one.
 *
 * Why: SQLite resolves symlinks when it opens a database (and names its `-wal` and `-journal`
 * after the target), so every file walguard keeps beside a database — the process lock, the
 * key file's neighbours, quarantine folders, a restore's temp files — must be named after the
 * same target, or two paths to one file get two locks. `realpath` alone cannot do this for a
 * database that does not exist yet: it fails on a dangling symlink, and falling back to the
 * link's own name is what let two processes own one database through a symlink.
 */
import { readlink, realpath } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** How many symlinks are followed before giving up (Linux's own limit is 40). */
const MAX_LINKS = 40;

/**
 * The canonical path of `file`: absolute, with its folder and every symlink resolved — a
 * dangling symlink to its (missing) target, relative targets relative to the link's folder.
 * Rejects with the OS error when a folder on the way does not exist, or with `ELOOP` after
 * 40 links.
 */
export async function canonicalPath(file: string): Promise<string> {
  let current = resolve(file);
  for (let links = 0; links <= MAX_LINKS; links++) {
    try {
      return await realpath(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    // Missing, or a dangling link: resolve the folder, then follow the last part if it is one.
    const full = join(await realpath(dirname(current)), basename(current));
    let target: string;
    try {
      target = await readlink(full);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EINVAL') return full;
      throw error;
    }
    current = resolve(dirname(full), target);
  }
  throw Object.assign(new Error(`Too many levels of symbolic links: ${file}`), { code: 'ELOOP' });
}
