import type { StatementResult, WireStatement } from '../queue/protocol.js';
import type { InteractiveTransaction } from '../tx/interactive-transaction.js';
import type { Reader } from './reader.js';

/** What the Kysely driver needs from an open walguard database. */
export interface QueryBackend {
  /** The read connection. */
  readonly reader: Reader;
  /** Throws `CLOSED` when the database no longer accepts work called at `ticket` (none: now). */
  assertOpen(ticket?: number): void;
  /** The submission ticket taken when `db.kysely` compiled this query, if any. */
  ticketOf(queryId: object | undefined): number | undefined;
  /** Queues statements as one critical unit; resolves with their results once durable. */
  submit(statements: WireStatement[], ticket: number | undefined): Promise<StatementResult[]>;
  /** Queues an interactive transaction; resolves once the writer has opened it. */
  beginTransaction(): Promise<InteractiveTransaction>;
}
