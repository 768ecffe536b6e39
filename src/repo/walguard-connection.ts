import { CompiledQuery, type DatabaseConnection, type QueryResult } from 'kysely';
import { captureCallSite, withCallerStack } from '../errors.js';
import type { StatementResult } from '../queue/protocol.js';
import type { InteractiveTransaction } from '../tx/interactive-transaction.js';
import type { QueryBackend } from './query-backend.js';
import { MUST_WRITE } from './reader.js';

/**
 * A Kysely connection onto walguard. It is a router, not a socket: reads go to the reads'
 * router (the main thread's reader or a reader thread, `read-router.ts`), statements that can modify the database go through the write queue as one
 * critical unit each, and inside a transaction everything goes to the writer.
 *
 * Routing by Kysely's operation tree: a `SelectQueryNode`, and the EXPLAIN of any query, read;
 * inserts, updates, deletes, merges and schema changes write; a raw query (`sql\`…\``) is
 * tried on the query-only reader and goes to the writer when SQLite says it writes (see
 * `Reader.tryQuery`). Statements that would end, start or escape a transaction, or change a
 * connection setting, are refused by the reader or the writer before they are prepared.
 *
 * The driver begins, commits and rolls back through `executeQuery` with the `TRANSACTION`
 * queries below (recognised by identity), as Kysely's SQLite driver does with its `begin`,
 * `commit` and `rollback`: Kysely's query log (`log`) then shows them.
 */
/** walguard's transaction commands; only these very objects begin, commit or roll back. */
export const TRANSACTION = Object.freeze({
  begin: CompiledQuery.raw('begin'),
  commit: CompiledQuery.raw('commit'),
  rollback: CompiledQuery.raw('rollback'),
});

const NO_ROWS: QueryResult<never> = Object.freeze({ rows: [] as never[] });

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
    if (compiledQuery === TRANSACTION.begin) await this.begin();
    else if (compiledQuery === TRANSACTION.commit) await this.commit();
    else if (compiledQuery === TRANSACTION.rollback) await this.rollback();
    // Awaited (not returned) so that an error's async stack reaches the app's frames.
    else return await this.#route<R>(compiledQuery);
    return NO_ROWS;
  }

  async #route<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const { sql, parameters, query } = compiledQuery;
    const statement = { sql, params: parameters };
    if (this.#tx !== undefined) {
      // Inside an interactive transaction reads run on the writer too: they see its writes.
      if (query?.kind === 'SelectQueryNode') this.#backend.reader.ranOnWriter?.();
      try {
        return asQueryResult<R>(await this.#tx.execute(statement));
      } catch (error) {
        // The writer's reply settled it: append the stack of whoever awaits this statement.
        throw withCallerStack(error, captureCallSite());
      }
    }
    const ticket = this.#backend.ticketOf(compiledQuery.queryId);
    this.#backend.assertOpen(ticket);
    const kind = query?.kind;
    if (kind === 'SelectQueryNode' || (query as { explain?: unknown } | undefined)?.explain) {
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
