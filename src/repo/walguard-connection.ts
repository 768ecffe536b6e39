import type { CompiledQuery, DatabaseConnection, QueryResult } from 'kysely';
import type { StatementResult } from '../queue/protocol.js';
import type { InteractiveTransaction } from '../tx/interactive-transaction.js';
import type { QueryBackend } from './query-backend.js';
import { MUST_WRITE } from './reader.js';

/**
 * A Kysely connection onto walguard. It is a router, not a socket: reads go to the reads'
 * router (the main thread's reader or a reader thread, `read-router.ts`), statements that can modify the database go through the write queue as one
 * critical unit each, and inside a transaction everything goes to the writer.
 *
 * Routing by Kysely's operation tree: a `SelectQueryNode` reads; inserts, updates, deletes,
 * merges and schema changes write; a raw query (`sql\`…\``) is tried on the query-only reader
 * and goes to the writer when SQLite says it writes (see `Reader.tryQuery`).
 */
export class WalguardConnection implements DatabaseConnection {
  readonly #backend: QueryBackend;
  /** The interactive transaction this connection is in, if any. */
  #tx: InteractiveTransaction | undefined;

  constructor(backend: QueryBackend) {
    this.#backend = backend;
  }

  /** Enters an interactive transaction. */
  async begin(): Promise<void> {
    this.#tx = await this.#backend.beginTransaction();
  }

  /** Commits the interactive transaction; resolves once it is durable. */
  async commit(): Promise<void> {
    const tx = this.#tx;
    this.#tx = undefined;
    await tx?.commit();
  }

  /** Rolls the interactive transaction back. */
  async rollback(): Promise<void> {
    const tx = this.#tx;
    this.#tx = undefined;
    await tx?.rollback();
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const { sql, parameters, query } = compiledQuery;
    const statement = { sql, params: parameters };
    if (this.#tx !== undefined) {
      // Inside an interactive transaction reads run on the writer too: they see its writes.
      if (query?.kind === 'SelectQueryNode') this.#backend.reader.ranOnWriter?.();
      return asQueryResult<R>(await this.#tx.execute(statement));
    }
    const ticket = this.#backend.ticketOf(compiledQuery.queryId);
    this.#backend.assertOpen(ticket);
    const kind = query?.kind;
    if (kind === 'SelectQueryNode') {
      return asQueryResult<R>(await this.#backend.reader.query(sql, parameters));
    }
    if (kind === 'RawNode' || kind === undefined) {
      try {
        return asQueryResult<R>(await this.#backend.reader.tryQuery(sql, parameters));
      } catch (error) {
        if (error !== MUST_WRITE) throw error;
      }
    }
    const [result] = await this.#backend.submit([statement], ticket);
    return asQueryResult<R>(result!);
  }

  async *streamQuery<R>(
    compiledQuery: CompiledQuery,
    chunkSize = 100,
  ): AsyncIterableIterator<QueryResult<R>> {
    const { sql, parameters, query } = compiledQuery;
    if (this.#tx !== undefined || query?.kind !== 'SelectQueryNode') {
      // Inside a transaction the rows come from the writer in one piece (a transaction is
      // bounded by its timeout anyway); only plain selects stream, from a reader thread.
      if (this.#tx === undefined && query?.kind !== 'RawNode') {
        throw new Error("walguard streams only select queries (as Kysely's SQLite dialect does)");
      }
      yield await this.executeQuery<R>(compiledQuery);
      return;
    }
    this.#backend.assertOpen();
    for await (const chunk of this.#backend.reader.stream(sql, parameters, chunkSize)) {
      yield asQueryResult<R>(chunk);
    }
  }
}

function asQueryResult<R>(result: StatementResult): QueryResult<R> {
  if (result.numAffectedRows === undefined) return { rows: result.rows as R[] };
  return {
    rows: result.rows as R[],
    numAffectedRows: result.numAffectedRows,
    insertId: result.insertId,
  };
}
