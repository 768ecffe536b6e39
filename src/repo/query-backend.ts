import type { StatementResult, WireStatement } from '../queue/protocol.js';
import type { InteractiveTransaction } from '../tx/interactive-transaction.js';

/**
 * Where reads go: the engine's read connection(s). A result may come back at once or as a
 * promise (a reader in another thread, a server round trip); callers await either.
 */
export interface ReadPort {
  /** Runs a statement known to only read. */
  query(sql: string, params: readonly unknown[]): StatementResult | Promise<StatementResult>;
  /** Runs a statement that may read or write; throws (or rejects with) `MUST_WRITE` when it writes. */
  tryQuery(sql: string, params: readonly unknown[]): StatementResult | Promise<StatementResult>;
  /** Streams the rows of a read, `chunkSize` rows at a time. */
  stream(
    sql: string,
    params: readonly unknown[],
    chunkSize: number,
  ): Iterable<StatementResult> | AsyncIterable<StatementResult>;
  /** Counts a read that ran on the writer instead (inside an interactive transaction). */
  ranOnWriter?(): void;
}

/** What the Kysely driver needs from an open walguard database. */
export interface QueryBackend {
  /** The read side. */
  readonly reader: ReadPort;
  /** Throws `CLOSED` when the database no longer accepts work called at `ticket` (none: now). */
  assertOpen(ticket?: number): void;
  /** The submission ticket taken when `db.kysely` compiled this query, if any. */
  ticketOf(queryId: object | undefined): number | undefined;
  /** Queues statements as one critical unit; resolves with their results once durable. */
  submit(statements: WireStatement[], ticket: number | undefined): Promise<StatementResult[]>;
  /** Queues an interactive transaction; resolves once the writer has opened it. */
  beginTransaction(): Promise<InteractiveTransaction>;
}
