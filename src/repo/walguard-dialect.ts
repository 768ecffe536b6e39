import {
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import type { QueryBackend } from './query-backend.js';
import { type MigrationLocks, WalguardAdapter } from './walguard-adapter.js';
import { WalguardDriver } from './walguard-driver.js';

/** The engine a dialect speaks to. */
export type Engine = 'sqlite' | 'postgres';

/**
 * The Kysely `Dialect` behind `db.kysely`: the engine's compiler, adapter and introspector
 * (SQLite's, or PostgreSQL's) with walguard's driver. An app may build its own `Kysely<DB>`
 * on it (with plugins such as `CamelCasePlugin`); all such instances share the one write
 * queue and reader.
 */
export class WalguardDialect implements Dialect {
  readonly #backend: QueryBackend;
  /** The migration locks of the open database, shared by all its dialects (SQLite). */
  readonly #locks: MigrationLocks;
  /** The engine whose SQL this dialect compiles. */
  readonly engine: Engine;

  constructor(backend: QueryBackend, locks: MigrationLocks, engine: Engine = 'sqlite') {
    this.#backend = backend;
    this.#locks = locks;
    this.engine = engine;
  }

  /** Drivers created (one per Kysely instance built on this dialect). */
  readonly drivers: WalguardDriver[] = [];

  createDriver(): Driver {
    const driver = new WalguardDriver(this.#backend);
    this.drivers.push(driver);
    return driver;
  }

  createQueryCompiler(): QueryCompiler {
    return this.engine === 'postgres' ? new PostgresQueryCompiler() : new SqliteQueryCompiler();
  }

  /**
   * SQLite: its adapter with a migration lock that excludes (see `walguard-adapter.ts`).
   * PostgreSQL: its own adapter, whose migration lock is `pg_advisory_xact_lock`.
   */
  createAdapter(): DialectAdapter {
    return this.engine === 'postgres' ? new PostgresAdapter() : new WalguardAdapter(this.#locks);
  }

  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return this.engine === 'postgres' ? new PostgresIntrospector(db) : new SqliteIntrospector(db);
  }
}
