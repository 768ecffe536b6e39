import {
  type DatabaseIntrospector,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryCompiler,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import type { QueryBackend } from './query-backend.js';
import { type MigrationLocks, WalguardAdapter } from './walguard-adapter.js';
import { WalguardDriver } from './walguard-driver.js';

/**
 * The Kysely `Dialect` behind `db.kysely`: SQLite's compiler, adapter and introspector with
 * walguard's driver. An app may build its own `Kysely<DB>` on it (with plugins such as
 * `CamelCasePlugin`); all such instances share the one write queue and reader.
 */
export class WalguardDialect implements Dialect {
  readonly #backend: QueryBackend;
  /** The migration locks of the open database, shared by all its dialects. */
  readonly #locks: MigrationLocks;

  constructor(backend: QueryBackend, locks: MigrationLocks) {
    this.#backend = backend;
    this.#locks = locks;
  }

  /** Drivers created (one per Kysely instance built on this dialect). */
  readonly drivers: WalguardDriver[] = [];

  createDriver(): Driver {
    const driver = new WalguardDriver(this.#backend);
    this.drivers.push(driver);
    return driver;
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  /** SQLite's adapter with a migration lock that excludes (see `walguard-adapter.ts`). */
  createAdapter(): WalguardAdapter {
    return new WalguardAdapter(this.#locks);
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}
