import {
  type CompiledQuery,
  createQueryId,
  type DatabaseConnection,
  type Driver,
  IdentifierNode,
  type QueryCompiler,
  RawNode,
} from 'kysely';
import type { QueryBackend } from './query-backend.js';
import { TRANSACTION } from './walguard-connection.js';
import { RouterPool } from './walguard-executor.js';

/**
 * Kysely's `Driver` for walguard. Unlike Kysely's own SQLite driver it needs no connection
 * mutex: every acquired connection is an independent router (reads to the reader, writes
 * to the queue), and transactions are serialized by the write queue itself.
 */
export class WalguardDriver implements Driver {
  /**
   * Routers, reused. Kysely's RuntimeDriver keeps every connection it has ever seen in a Set
   * (to add query logging once), so a fresh router per query grew that Set by one object per
   * query, forever. Reuse bounds it by the peak number of queries in flight at once.
   */
  readonly #routers: RouterPool;

  constructor(backend: QueryBackend) {
    this.#routers = new RouterPool(backend);
  }

  /** Routers created so far (for tests: bounded by peak concurrency). */
  get created(): number {
    return this.#routers.created;
  }

  /** Nothing to do: `openDatabase` opened the connections. */
  async init(): Promise<void> {}

  /** A router: a released one, or a new one. */
  async acquireConnection(): Promise<DatabaseConnection> {
    return this.#routers.acquire();
  }

  /** Queues an interactive transaction and waits until the writer has opened it. Isolation settings do not apply: SQLite transactions are serializable. */
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // Through executeQuery, as Kysely's SQLite driver does, so that Kysely's query log sees
    // `begin` (and `commit`, `rollback`). The backend checks that the database is open,
    // against the transaction's own ticket: one called before close() is still accepted.
    await connection.executeQuery(TRANSACTION.begin);
  }

  /** Commits; resolves once the transaction's batch is durable. */
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(TRANSACTION.commit);
  }

  /** Rolls back this transaction alone. */
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(TRANSACTION.rollback);
  }

  /** `SAVEPOINT name` inside the transaction. */
  async savepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await connection.executeQuery(savepointCommand('savepoint', savepointName, compileQuery));
  }

  /** `ROLLBACK TO name` inside the transaction. */
  async rollbackToSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await connection.executeQuery(savepointCommand('rollback to', savepointName, compileQuery));
  }

  /** `RELEASE name` inside the transaction. */
  async releaseSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await connection.executeQuery(savepointCommand('release', savepointName, compileQuery));
  }

  /** Returns the router for reuse (its transaction, if any, has ended by now). */
  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    this.#routers.release(connection as Parameters<RouterPool['release']>[0]);
  }

  /** The database's lifetime is `Walguard.close()`'s business, not Kysely's. */
  async destroy(): Promise<void> {}
}

function savepointCommand(
  command: string,
  name: string,
  compileQuery: QueryCompiler['compileQuery'],
): CompiledQuery {
  // The identifier node makes Kysely quote and sanitise the name.
  const node = RawNode.createWithChildren([
    RawNode.createWithSql(`${command} `),
    IdentifierNode.create(name),
  ]);
  return compileQuery(node, createQueryId());
}
