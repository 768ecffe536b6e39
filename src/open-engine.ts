/**
 * Engine selection: a `path` opens the embedded libSQL file (`durability/open-database.ts`),
 * a `url` a PostgreSQL server (`pg/open-postgres.ts`). Both give the facade the same parts:
 * a writer behind `WriterPort`, a reader behind `ReadPort`, and what closing needs.
 */
import { type OpenedConnections, openConnections } from './durability/open-database.js';
import { WalguardError } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { OpenedPostgres } from './pg/open-postgres.js';

/** The opened connections of either engine. */
export type OpenedEngine = (OpenedConnections & { engine: 'sqlite' }) | OpenedPostgres;

/** Opens the database the options name. */
export async function openEngine(options: ResolvedOptions): Promise<OpenedEngine> {
  if (options.engine === 'postgres') {
    // Loaded on first use: `pg` and walguard's PostgreSQL modules added ~130 ms to every
    // process's import of walguard (measured here, 2026-12-05: 530 → 395 ms), and an app on a
    // file never needs them.
    const { openPostgres } = await import('./pg/open-postgres.js');
    return openPostgres(options);
  }
  return { ...(await openConnections(options)), engine: 'sqlite' };
}

/**
 * The file engine's parts, for services that only exist for a file (checkpoints, backups,
 * integrity checks, PRAGMAs); `UNSUPPORTED` on PostgreSQL, where `what` does not apply.
 */
export function fileEngine(opened: OpenedEngine, what: string): OpenedConnections {
  if (opened.engine === 'sqlite') return opened;
  throw new WalguardError(
    'UNSUPPORTED',
    `${what} applies to a walguard file, not to PostgreSQL (docs/postgres.md says what to use there); nothing was done`,
  );
}
