import {
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import type { QueryBackend } from './query-backend.js';
import { WalguardDriver } from './walguard-driver.js';

/**
 * The Kysely `Dialect` behind `db.kysely`: SQLite's compiler, adapter and introspector with
 * walguard's driver. An app may build its own `Kysely<DB>` on it (with plugins such as
 * `CamelCasePlugin`); all such instances share the one write queue and reader.
 */
export class WalguardDialect implements Dialect {
  readonly #backend: QueryBackend;

  constructor(backend: QueryBackend) {
    this.#backend = backend;
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

  createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}
