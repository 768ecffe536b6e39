/**
 * Runs a store's tests on both engines: the embedded file, and PostgreSQL (a fresh database
 * on the run's throwaway cluster per test; skipped, with the install hint printed once by
 * the global setup, when PostgreSQL is not installed).
 *
 * `describeEngines('ConversationStore', (engine) => { … })` declares the block once per
 * engine; inside, `engine.open()` replaces `openTemp()`, `engine.fresh(db, sql)` replaces
 * `readFresh(db.path, sql)`, and `engine.code.unique` (…) the engine's code for a
 * constraint kind.
 */
import { afterEach, describe } from 'vitest';
import {
  openDatabase,
  PostgresError,
  SqliteError,
  type Walguard,
  type WalguardOptions,
} from '../../src/index.js';
import { openTemp, readFresh } from '../helpers.js';
import { createDatabase, postgresBinDir, readFreshPg, sharedClusterUrl } from '../pg/cluster.js';

/** Constraint kinds whose error code differs by engine. */
type ConstraintKind = 'unique' | 'primaryKey' | 'foreignKey' | 'check';

/** One engine, as a store test sees it. */
export interface TestEngine {
  readonly name: 'sqlite' | 'postgres';
  /** Opens a fresh, empty database; closed after the test. */
  open<DB>(options?: Partial<WalguardOptions>): Promise<Walguard<DB>>;
  /** Opens the database of `db` again (after `db.close()`); the caller closes it. */
  reopen<DB>(db: object): Promise<Walguard<DB>>;
  /** Rows read through a fresh connection of its own (never walguard's). */
  fresh<T = Record<string, unknown>>(db: object, sql: string): Promise<T[]>;
  /** The error `code` of a constraint violation of each kind. */
  readonly code: Readonly<Record<ConstraintKind, string>>;
  /** The class of a unit's SQL errors. */
  readonly SqlError: typeof SqliteError | typeof PostgresError;
}

/** Where each open database lives: a file path, or a PostgreSQL URL. */
const location = new WeakMap<object, string>();

const sqlite: TestEngine = {
  name: 'sqlite',
  async open<DB>(options: Partial<WalguardOptions> = {}) {
    const db = await openTemp<DB>(options);
    location.set(db, db.path);
    return db;
  },
  reopen: (db) => openDatabase({ path: location.get(db)!, logger: false }),
  fresh: async (db, sql) => readFresh(location.get(db)!, sql),
  code: {
    unique: 'SQLITE_CONSTRAINT_UNIQUE',
    primaryKey: 'SQLITE_CONSTRAINT_PRIMARYKEY',
    foreignKey: 'SQLITE_CONSTRAINT_FOREIGNKEY',
    check: 'SQLITE_CONSTRAINT_CHECK',
  },
  SqlError: SqliteError,
};

const opened: Walguard<unknown>[] = [];

afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
});

const postgres: TestEngine = {
  name: 'postgres',
  async open<DB>(options: Partial<WalguardOptions> = {}) {
    const url = await createDatabase(await sharedClusterUrl());
    const db = await openDatabase<DB>({ logger: false, ...options, url });
    opened.push(db as Walguard<unknown>);
    location.set(db, url);
    return db;
  },
  reopen: (db) => openDatabase({ url: location.get(db)!, logger: false }),
  fresh: (db, sql) => readFreshPg(location.get(db)!, sql),
  code: { unique: '23505', primaryKey: '23505', foreignKey: '23503', check: '23514' },
  SqlError: PostgresError,
};

/** Declares `body`'s tests once per engine (PostgreSQL's skipped when it is not installed). */
export function describeEngines(title: string, body: (engine: TestEngine) => void): void {
  describe(`${title} (sqlite)`, () => body(sqlite));
  describe.skipIf(postgresBinDir() === undefined)(`${title} (postgres)`, () => body(postgres));
}
