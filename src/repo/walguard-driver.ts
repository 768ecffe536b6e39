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
import { WalguardConnection } from './walguard-connection.js';

/**
 * Kysely's `Driver` for walguard. Unlike Kysely's own SQLite driver it needs no connection
 * mutex: every acquired connection is an independent router (reads to the reader, writes
 * to the queue), and transactions are serialized by the write queue itself.
 */
export class WalguardDriver implements Driver {
  readonly #backend: QueryBackend;

  constructor(backend: QueryBackend) {
    this.#backend = backend;
  }

  /** Nothing to do: `openDatabase` opened the connections. */
  async init(): Promise<void> {}

  /** A fresh router; cheap. */
  async acquireConnection(): Promise<DatabaseConnection> {
    return new WalguardConnection(this.#backend);
  }

  /** Queues an interactive transaction and waits until the writer has opened it. Isolation settings do not apply: SQLite transactions are serializable. */
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    this.#backend.assertOpen();
    await (connection as WalguardConnection).begin();
  }

  /** Commits; resolves once the transaction's batch is durable. */
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as WalguardConnection).commit();
  }

  /** Rolls back this transaction alone. */
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as WalguardConnection).rollback();
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

  /** Nothing to release. */
  async releaseConnection(): Promise<void> {}

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
