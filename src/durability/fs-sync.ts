/** fsync helpers shared by the durability services. */
import { open } from 'node:fs/promises';

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
