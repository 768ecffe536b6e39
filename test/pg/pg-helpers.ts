/** Opening walguard on a fresh PostgreSQL database of the run's throwaway cluster. */
import { afterEach, describe } from 'vitest';
import { openDatabase, type Walguard, type WalguardOptions } from '../../src/index.js';
import { createDatabase, postgresBinDir, sharedClusterUrl } from './cluster.js';

/** `describe`, skipped when PostgreSQL is not installed (the global setup says how to get it). */
export const describePg = describe.skipIf(postgresBinDir() === undefined);

const opened: Walguard<unknown>[] = [];

afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
});

/** A fresh database's URL on the shared cluster. */
export async function freshUrl(): Promise<string> {
  return createDatabase(await sharedClusterUrl());
}

/** Opens walguard on `url` (default: a fresh database); closed after the test. */
export async function openPg<DB>(
  options: Partial<WalguardOptions> = {},
): Promise<Walguard<DB> & { url: string }> {
  const url = options.url ?? (await freshUrl());
  const db = await openDatabase<DB>({ logger: false, ...options, url });
  opened.push(db as Walguard<unknown>);
  return Object.assign(db, { url });
}
