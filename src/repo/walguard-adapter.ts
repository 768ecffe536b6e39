/**
 * Kysely's `DialectAdapter` for walguard: SQLite's, with a migration lock that excludes.
 *
 * Kysely's `SqliteAdapter` takes no lock (`acquireMigrationLock` is empty): it relies on a
 * SQLite dialect having one connection, which the migrator holds from lock to unlock.
 * walguard's dialect has no such connection — every query is routed on its own — so eight
 * `Migrator`s run at once applied the first migration eight times (measured). Here the lock
 * is a mutex per migration lock table, shared by every Kysely instance of one open database
 * (`db.kysely`, those built on `db.dialect`, `db.transaction()`, `db.migrate()`). Other
 * processes cannot open the database at the same time (the process lock), so exclusion
 * inside this process is exclusion.
 */
import { type Kysely, type MigrationLockOptions, SqliteAdapter } from 'kysely';

/** Mutexes by migration lock table, for one open database. */
export class MigrationLocks {
  /** The promise each next holder of a lock waits for. */
  readonly #tails = new Map<string, Promise<void>>();
  /** How to release each lock held now. */
  readonly #releases = new Map<string, () => void>();

  /** Resolves once the lock `key` is this caller's. */
  async acquire(key: string): Promise<void> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => held);
    this.#tails.set(key, tail);
    await previous;
    this.#releases.set(key, () => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
      release();
    });
  }

  /** Releases the lock `key` (nothing when it is not held). */
  release(key: string): void {
    const release = this.#releases.get(key);
    this.#releases.delete(key);
    release?.();
  }
}

/** The lock's key: the lock table, with its schema. */
function keyOf(options: MigrationLockOptions): string {
  return `${options.lockTableSchema ?? ''}.${options.lockTable}`;
}

export class WalguardAdapter extends SqliteAdapter {
  readonly #locks: MigrationLocks;
  readonly #transactionalDdl: boolean;

  /** `transactionalDdl`: whether to tell the Migrator to wrap its run in a transaction (see `migrations.ts`). */
  constructor(locks: MigrationLocks, transactionalDdl = false) {
    super();
    this.#locks = locks;
    this.#transactionalDdl = transactionalDdl;
  }

  override get supportsTransactionalDdl(): boolean {
    return this.#transactionalDdl;
  }

  /** Waits until no other migrator of this database holds the lock table's lock. */
  override async acquireMigrationLock(_db: Kysely<unknown>, options: MigrationLockOptions) {
    await this.#locks.acquire(keyOf(options));
  }

  /** Lets the next migrator in. */
  override async releaseMigrationLock(_db: Kysely<unknown>, options: MigrationLockOptions) {
    this.#locks.release(keyOf(options));
  }

  /** The same locks, telling the Migrator that SQLite's DDL is transactional. */
  withTransactionalDdl(): WalguardAdapter {
    return new WalguardAdapter(this.#locks, true);
  }
}
