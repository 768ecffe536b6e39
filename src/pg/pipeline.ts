/**
 * Protocol-level pipelining for node-postgres: many statements, one Sync, one round trip.
 *
 * `pg` sends one query at a time and waits for its ReadyForQuery; its own `pipeline` mode
 * sends each query with a Sync of its own, so the server flushes a reply (a `send()`) per
 * statement. A `Pipeline` is a node-postgres "submittable" (the extension point pg-cursor
 * uses): `submit()` writes Parse/Bind/Describe/Execute for every statement and one Sync, the
 * socket corked so that they leave in one write, and the handlers below collect each
 * statement's rows until the server's ReadyForQuery. Parameters stay bound (never inlined
 * into the SQL text), and the extended protocol refuses a text holding several commands.
 *
 * After an error the server skips every message up to the Sync: the pipeline reports which
 * statement failed and that the ones after it did not run. What that means for the
 * transaction (aborted, to be rolled back) is the writer's business.
 */
import { createRequire } from 'node:module';
import type { Connection, Submittable } from 'pg';
import type { PgTypes } from './pg-types.js';

/** One statement of a pipeline. */
export interface PipelineStatement {
  /** SQL text (one command). */
  sql: string;
  /** Parameters, already mapped to wire values (`toWireParams`). */
  params: readonly (string | Buffer | null)[];
  /** Prepared-statement name ('' = unnamed). */
  name?: string;
  /** Whether to send Parse (false: `name` is already prepared on this connection). */
  parse?: boolean;
  /**
   * Whether to send a Flush after it: the server then sends its result at once instead of
   * with the rest at the Sync (the writer's transaction id reaches it before any commit).
   */
  flush?: boolean;
}

/** The result of one statement. */
export interface PipelineResult {
  /** The command tag's verb (`INSERT`, `SELECT`, `COMMIT`, `ROLLBACK`, …). */
  command: string;
  /** Rows changed or returned, from the command tag (null when the tag carries none). */
  rowCount: number | null;
  /** True when the statement returns rows (it had a row description). */
  returnsRows: boolean;
  /** The rows, as objects keyed by column name. */
  rows: Record<string, unknown>[];
}

/** What a pipeline did: results of the statements that ran, and the error that stopped it. */
export interface PipelineOutcome {
  results: PipelineResult[];
  /** The error and the index of the statement it belongs to (= `results.length`). */
  failure?: { index: number; error: Error };
}

interface FieldDescription {
  name: string;
  dataTypeID: number;
  format: string;
}

/** node-postgres' own mapping of JS values to wire text (Dates, arrays, JSON, bytes). */
const { prepareValue } = createRequire(import.meta.url)('pg/lib/utils.js') as {
  prepareValue(value: unknown): unknown;
};

/** Maps parameters to wire values; throws a plain `TypeError` naming the bad parameter. */
export function toWireParams(params: readonly unknown[]): (string | Buffer | null)[] {
  const out = new Array<string | Buffer | null>(params.length);
  for (let i = 0; i < params.length; i++) {
    const value = prepareValue(params[i]);
    if (value !== null && typeof value !== 'string' && !(value instanceof Buffer)) {
      throw new TypeError(`Parameter $${i + 1} cannot be sent to PostgreSQL`);
    }
    out[i] = value;
  }
  return out;
}

/** A batch of statements sent in one round trip; resolves once the server answered them all. */
export class Pipeline implements Submittable {
  readonly #statements: readonly PipelineStatement[];
  readonly #types: PgTypes;
  readonly #results: PipelineResult[] = [];
  #parsers: ((text: string) => unknown)[] = [];
  #fields: FieldDescription[] = [];
  #rows: Record<string, unknown>[] = [];
  #failure: { index: number; error: Error } | undefined;
  #settle!: (outcome: PipelineOutcome) => void;
  #settled = false;
  /** Settles once the server's ReadyForQuery arrived (or the connection failed). */
  readonly done: Promise<PipelineOutcome>;
  /** node-postgres reads this for its query-level callback; unused. */
  callback: undefined;

  readonly #closes: readonly string[];

  /** `closes`: prepared statements to close (Close messages) before the statements run. */
  constructor(
    statements: readonly PipelineStatement[],
    types: PgTypes,
    closes: readonly string[] = [],
  ) {
    this.#statements = statements;
    this.#closes = closes;
    this.#types = types;
    this.done = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  /** Writes every statement and one Sync, corked into one socket write. */
  submit(connection: Connection): void {
    const con = connection as Connection & {
      stream: { cork?(): void; uncork?(): void };
      describe(msg: { type: string; name: string }): void;
      flush(): void;
      execute(msg: { portal: string; rows: number }): void;
      bind(msg: { statement: string; portal: string; values: unknown[] }): void;
      parse(msg: { text: string; name: string }): void;
      sync(): void;
      close(msg: { type: string; name: string }): void;
    };
    con.stream.cork?.();
    try {
      for (const name of this.#closes) con.close({ type: 'S', name });
      for (const s of this.#statements) {
        const name = s.name ?? '';
        if (s.parse !== false) con.parse({ text: s.sql, name });
        con.bind({ statement: name, portal: '', values: s.params as unknown[] });
        con.describe({ type: 'P', name: '' });
        con.execute({ portal: '', rows: 0 });
        if (s.flush === true) con.flush();
      }
      con.sync();
    } finally {
      con.stream.uncork?.();
    }
  }

  handleRowDescription(msg: { fields: FieldDescription[] }): void {
    this.#fields = msg.fields;
    this.#parsers = msg.fields.map((f) => this.#types.getTypeParser(f.dataTypeID, 'text'));
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    const row: Record<string, unknown> = {};
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i++) {
      const raw = msg.fields[i];
      row[fields[i]!.name] = raw === null || raw === undefined ? null : this.#parsers[i]!(raw);
    }
    this.#rows.push(row);
  }

  handleCommandComplete(msg: { text: string }): void {
    const words = msg.text.split(' ');
    const last = Number(words[words.length - 1]);
    this.#results.push({
      command: words[0] ?? '',
      rowCount: words.length > 1 && Number.isInteger(last) ? last : null,
      returnsRows: this.#fields.length > 0,
      rows: this.#rows,
    });
    this.#fields = [];
    this.#parsers = [];
    this.#rows = [];
  }

  handleEmptyQuery(): void {
    this.#results.push({ command: '', rowCount: null, returnsRows: false, rows: [] });
  }

  handleError(error: Error): void {
    // node-postgres drops the query as active on an error; the server skips to the Sync.
    this.#failure ??= { index: this.#results.length, error };
    this.#finish();
  }

  handleReadyForQuery(): void {
    this.#finish();
  }

  handlePortalSuspended(): void {
    // Never sent: every Execute asks for all rows.
  }

  handleCopyInResponse(connection: Connection): void {
    (connection as Connection & { sendCopyFail(msg: string): void }).sendCopyFail(
      'COPY FROM STDIN is not supported in a walguard unit',
    );
  }

  handleCopyData(): void {}

  #finish(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#settle({ results: this.#results, failure: this.#failure });
  }
}
