/**
 * The PostgreSQL writer: one dedicated connection, each batch one transaction, each round of
 * it one network round trip.
 *
 * Strategy, per batch (measured in bench/pg-isolation.ts; see docs/postgres.md):
 *   BEGIN; SELECT pg_current_xact_id(); unit 1; unit 2; …; SET LOCAL synchronous_commit; COMMIT
 * sent as one pipeline (`pipeline.ts`: every statement's Parse/Bind/Execute, one Sync), so a
 * batch of 256 units costs about one round trip instead of 256. Units are NOT wrapped in
 * savepoints: a savepoint is a subtransaction, and more than 64 of them in one transaction
 * overflow each backend's subtransaction cache, after which every snapshot on the server
 * consults pg_subtrans; a savepoint per unit also cost 2 more statements per unit. Instead,
 * a unit that fails is isolated by a replay: PostgreSQL skips the rest of the pipeline after
 * an error and the transaction is aborted, so the writer rolls back to the last anchor (the
 * BEGIN, or a savepoint it set after an earlier failure), re-runs the units before the
 * failed one, sets a savepoint there (so a second failure need not re-run them again), and
 * sends the rest — one more round trip per failing unit, at most `MAX_ANCHORS` subtransactions
 * per batch, and none at all for a batch without failures.
 *
 * Interactive transactions (and migrations) run under a savepoint of their own, statement by
 * statement, as on SQLite; the statement units after one are anchored by a savepoint, since
 * a transaction's statements cannot be replayed.
 *
 * Invariants:
 * - Nothing is acknowledged before the COMMIT of its transaction returned `COMMIT`, with
 *   `synchronous_commit` at the session's durable level (on, or stronger) for a critical
 *   batch — set LOCAL just before COMMIT, so no unit can have weakened it — and `off` for a
 *   deferred-only batch (PostgreSQL's own "durable soon": a later flush makes it durable).
 * - A unit's statements never end, start or escape the batch's transaction
 *   (`tx/transaction-control.ts`), and each holds one command (the extended protocol).
 * - A lost connection rejects every unit of the batch in flight with `IO_ERROR`, unless the
 *   writer can prove the batch committed: it reconnects and asks `pg_xact_status()` of the
 *   batch's transaction id (ending the old session first when it still runs). The error
 *   says what the server did (`details.outcome`: `rolled back`, `committed` — writes present
 *   although rejected, when some results were lost — or `unknown`). The next batch reconnects.
 * - Batches never overlap (the write queue's p-queue), and the writer's own statements run
 *   only between or inside them.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { Logger } from 'pino';
import {
  PostgresError,
  toUnitError,
  toWireError,
  WalguardError,
  type WalguardErrorCode,
  type WireError,
} from '../errors.js';
import type {
  BatchReply,
  StatementResult,
  UnitOutcome,
  WireStatement,
  WireUnit,
} from '../queue/protocol.js';
import type { TxListener, WriterPort } from '../queue/writer-port.js';
import { requireActiveTx } from '../tx/active-tx.js';
import { refusedStatement, refusedStatementError } from '../tx/transaction-control.js';
import {
  applySessionSettings,
  connectClient,
  type PgSettingsReadBack,
  redactUrl,
} from './pg-connection.js';
import { pgFatalCode, sqlState, toPostgresError } from './pg-errors.js';
import { resolveOutcome, type TxOutcome } from './pg-outcome.js';
import { type PipelineOutcome, type PipelineStatement, toWireParams } from './pipeline.js';
import { StatementCache } from './statement-cache.js';

/** What the writer needs to know. */
export interface PgWriterConfig {
  /** The server URL (never logged as is). */
  url: string;
  /** `lock_timeout` of the writer's session, in ms. */
  busyTimeoutMs: number;
  /** Interactive transaction timeout in ms. */
  transactionTimeoutMs: number;
  /** walguard's logger (a child). */
  logger: Logger;
}

/** Most savepoints a batch sets for replays (each failing unit may add one). */
const MAX_ANCHORS = 16;

/** How long the writer keeps trying to reach the server before a batch fails, in ms. */
const RECONNECT_WINDOW_MS = 10_000;

/** One statement of a round, and what it belongs to. */
interface Item extends PipelineStatement {
  /** The unit it belongs to, or undefined for the writer's own statements. */
  unit?: number;
  /** Its index in the unit. */
  index?: number;
  /** For the writer's own statements: the command, for error messages. */
  control?: string;
}

/** A statement unit, refused or encoded for the wire. */
interface Encoded {
  statements: { sql: string; params: (string | Buffer | null)[] }[];
}

/** The end of an interactive transaction. */
type TxEnd = 'commit' | 'rollback' | 'timeout' | { abort: unknown };

interface ActiveTx {
  txId: number;
  end: (how: TxEnd) => void;
  timer: NodeJS.Timeout;
  /** The first statement error: the transaction is aborted from then on. */
  failed: unknown;
  /** The statement running now, if any. */
  running: Promise<unknown> | undefined;
  /** Set when the timeout ended it (its running statement is then cancelled). */
  timedOut: boolean;
  /** Its timeout, in ms. */
  timeoutMs: number;
}

/** Thrown inside a batch to fail it whole. */
class BatchAbort {
  constructor(
    readonly cause: unknown,
    readonly control?: string,
  ) {}
}

const control = (sql: string): Item => ({ sql, params: [], control: sql });
const BEGIN = control('BEGIN');
/** Flushed: the server sends the id before it runs the units, so a lost batch can be asked about. */
const XID: Item = { ...control('SELECT pg_current_xact_id()::text AS xid'), flush: true };
const ROLLBACK = control('ROLLBACK');
const ANCHOR = control('SAVEPOINT wg_anchor');
const TO_ANCHOR = control('ROLLBACK TO SAVEPOINT wg_anchor');
const UNIT = control('SAVEPOINT wg_unit');
const RELEASE_UNIT = control('RELEASE SAVEPOINT wg_unit');
const TO_UNIT = control('ROLLBACK TO SAVEPOINT wg_unit');
const COMMIT = control('COMMIT');
const DEFER_CONSTRAINTS = control('SET CONSTRAINTS ALL DEFERRED');
const CHECK_CONSTRAINTS = control('SET CONSTRAINTS ALL IMMEDIATE');

export class PgWriter implements WriterPort {
  readonly #config: PgWriterConfig;
  readonly #log: Logger;
  /** The connection; undefined after it was lost (the next batch reconnects). */
  #client: pg.Client | undefined;
  /** The session's durable `synchronous_commit` level, as read back. */
  readonly settings: PgSettingsReadBack;
  /** Prepared statements of the current connection. */
  readonly #cache = new StatementCache();
  /** Interactive transactions waiting for or holding the writer. */
  readonly #tx = new Map<number, TxListener>();
  #activeTx: ActiveTx | undefined;
  /** The transaction id of the batch in flight, once the server told it. */
  #xid: string | undefined;
  #closed = false;
  /** True while a batch re-runs with deferred constraints checked per unit (see runBatch). */
  #checked = false;

  private constructor(config: PgWriterConfig, client: pg.Client, settings: PgSettingsReadBack) {
    this.#config = config;
    this.#log = config.logger;
    this.settings = settings;
    this.#adopt(client);
  }

  /** Connects the writer and applies and verifies its session settings. */
  static async open(config: PgWriterConfig): Promise<PgWriter> {
    const client = await connectClient(config.url, 'walguard writer');
    try {
      const settings = await applySessionSettings(client, config.busyTimeoutMs, false);
      return new PgWriter(config, client, settings);
    } catch (error) {
      await client.end().catch(() => {});
      throw error;
    }
  }

  #adopt(client: pg.Client): void {
    this.#client = client;
    this.#cache.clear();
    client.removeAllListeners('error');
    client.on('error', (error) => {
      if (this.#client !== client) return;
      this.#log.warn({ err: error }, 'the writer lost its PostgreSQL connection');
      this.#client = undefined;
      this.#activeTx?.end({ abort: error });
    });
  }

  /** The connection, reconnecting (for up to `RECONNECT_WINDOW_MS`) when it was lost. */
  async #connection(): Promise<pg.Client> {
    if (this.#client !== undefined) return this.#client;
    const deadline = performance.now() + RECONNECT_WINDOW_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await connectClient(this.#config.url, 'walguard writer');
        try {
          await applySessionSettings(client, this.#config.busyTimeoutMs, false);
        } catch (error) {
          await client.end().catch(() => {});
          throw error;
        }
        this.#adopt(client);
        this.#log.info('the writer reconnected to PostgreSQL');
        return client;
      } catch (error) {
        if (this.#closed || performance.now() + 250 > deadline) throw error;
        await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)));
      }
    }
  }

  /** Runs one batch as one transaction; see the file header. */
  async runBatch(units: WireUnit[], durable: boolean): Promise<BatchReply> {
    const started = performance.now();
    const outcomes = new Array<UnitOutcome | undefined>(units.length);
    const encoded = units.map((unit, u) => this.#encode(unit, u, outcomes));
    const reply = (error?: WireError): BatchReply => {
      const commitMs = performance.now() - started;
      if (error !== undefined) {
        return { outcomes: units.map(() => ({ ok: false, error })), error, commitMs };
      }
      return { outcomes: outcomes.map((o) => o ?? { ok: true, results: [] }), commitMs };
    };
    if (this.#closed) {
      return reply(toWireError(new WalguardError('CLOSED', 'The writer is closed')));
    }
    let client: pg.Client;
    try {
      client = await this.#connection();
    } catch (error) {
      return reply(toWireError(asWalguard(error, 'IO_ERROR', this.#config.url)));
    }
    this.#xid = undefined;
    const progress = { complete: false };
    try {
      await this.#runUnits(client, units, encoded, outcomes, durable, progress);
      return reply();
    } catch (error) {
      const cause = error instanceof BatchAbort ? error.cause : error;
      const code = pgFatalCode(cause);
      if (this.#client !== client || code === 'IO_ERROR') {
        return this.#lost(client, cause, progress.complete, reply);
      }
      await this.#rollbackQuietly(client);
      if (this.#deferredCheckFailed(error, units) && !this.#checked) {
        // A deferred constraint failed at COMMIT (it rolled the batch back): run the batch
        // again with deferred constraints checked at the end of each unit (SET CONSTRAINTS
        // ALL IMMEDIATE after it, ALL DEFERRED before it), so that only the unit that broke
        // one is rejected. Costs two statements per unit, in this rare case only.
        this.#checked = true;
        try {
          return await this.runBatch(units, durable);
        } finally {
          this.#checked = false;
        }
      }
      if (code !== undefined) return reply(toWireError(asWalguard(cause, code, this.#config.url)));
      const what = error instanceof BatchAbort ? error.control : undefined;
      return reply(batchError(cause, what));
    }
  }

  /** Checks and encodes a statement unit; a refused one gets its outcome now. */
  #encode(unit: WireUnit, u: number, outcomes: (UnitOutcome | undefined)[]): Encoded | undefined {
    if (unit.kind !== 'statements') return undefined;
    try {
      return {
        statements: unit.statements.map((s) => {
          const refused = refusedStatement(s.sql, 'unit');
          if (refused !== undefined) throw refusedStatementError(refused, 'unit');
          return { sql: s.sql, params: toWireParams(s.params) };
        }),
      };
    } catch (error) {
      const e =
        error instanceof WalguardError
          ? error
          : new WalguardError('INVALID_ARGUMENT', `${(error as Error).message}; nothing ran`);
      outcomes[u] = { ok: false, error: toWireError(e) };
      return undefined;
    }
  }

  /** Runs the batch's units: segments of statement units, and interactive units between them. */
  async #runUnits(
    client: pg.Client,
    units: WireUnit[],
    encoded: (Encoded | undefined)[],
    outcomes: (UnitOutcome | undefined)[],
    durable: boolean,
    progress: { complete: boolean },
  ): Promise<void> {
    if (durable && units.length === 1 && encoded[0] !== undefined) {
      return this.#runAlone(client, encoded, outcomes);
    }
    let segment: number[] = [];
    let opening: Item[] = [BEGIN, XID];
    const level = durable ? this.settings.synchronous_commit : 'off';
    const finish = control(`SET LOCAL synchronous_commit = '${level}'`);
    for (let u = 0; u <= units.length; u++) {
      const unit = units[u];
      if (unit !== undefined && unit.kind === 'statements') {
        if (encoded[u] !== undefined) segment.push(u);
        continue;
      }
      const last = unit === undefined;
      const closing = last ? [finish, COMMIT] : [UNIT];
      await this.#runSegment(client, segment, encoded, outcomes, opening, closing, progress);
      if (last) return;
      const tx = unit as Extract<WireUnit, { kind: 'interactive' }>;
      outcomes[u] = await this.#runInteractive(
        client,
        tx.txId,
        tx.timeoutMs || this.#config.transactionTimeoutMs,
      );
      segment = [];
      // Statements after a transaction are anchored: a replay must not undo the transaction.
      opening = units.slice(u + 1).some((x) => x.kind === 'statements') ? [ANCHOR] : [];
    }
  }

  /**
   * A batch of one critical unit runs without BEGIN and COMMIT of ours: the extended
   * protocol runs every statement up to the Sync as one implicit transaction, committed at
   * the Sync under the session's durable `synchronous_commit` and rolled back whole by the
   * server on an error. That is the naive autocommit INSERT's cost: with BEGIN, SET LOCAL
   * and COMMIT around it, one caller ran at 0.74× a plain `pg` pool (bench/postgres.ts).
   * It does not ask for its transaction id either (one statement more for a one-statement
   * unit: ~8% of a lone writer's rate, measured 2026-12-05), so a connection lost during it
   * leaves its outcome `unknown` — what a plain `pg` query can say in that case.
   */
  async #runAlone(
    client: pg.Client,
    encoded: (Encoded | undefined)[],
    outcomes: (UnitOutcome | undefined)[],
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const items: Item[] = [];
      this.#push(items, 0, encoded);
      const outcome = await this.#send(client, items);
      this.#collect(items, outcome, outcomes);
      const failure = outcome.failure;
      if (failure === undefined) return;
      const item = items[failure.index];
      if (item?.unit === undefined || pgFatalCode(failure.error) !== undefined) {
        throw new BatchAbort(failure.error, item?.control);
      }
      if (sqlState(failure.error) === '0A000' && item.parse === false && attempt === 0) {
        this.#cache.invalidateAll();
        continue;
      }
      outcomes[0] = { ok: false, error: toWireError(toPostgresError(failure.error)) };
      return;
    }
  }

  /**
   * Runs statement units `segment` (unit indices) between `opening` and `closing`, replaying
   * around each unit that fails (see the file header). Their results go into `outcomes`.
   */
  async #runSegment(
    client: pg.Client,
    segment: number[],
    encoded: (Encoded | undefined)[],
    outcomes: (UnitOutcome | undefined)[],
    opening: Item[],
    closing: Item[],
    progress: { complete: boolean },
  ): Promise<void> {
    const todo = [...segment];
    /** Where the current anchor is: the transaction's start, or a savepoint of ours. */
    let anchor: 'begin' | 'savepoint' = opening[0] === BEGIN ? 'begin' : 'savepoint';
    /** Units todo[redoFrom..resume) ran before the last failure and re-run after recovery. */
    let redoFrom = 0;
    let resume = 0;
    let recovering = false;
    let anchors = 0;
    let planRetried = false;
    for (;;) {
      const items: Item[] = [];
      if (!recovering) items.push(...opening);
      else if (anchor === 'begin') items.push(ROLLBACK, BEGIN, XID);
      else items.push(TO_ANCHOR);
      for (let i = redoFrom; i < resume; i++) this.#push(items, todo[i]!, encoded);
      const anchorAt = recovering && resume > redoFrom && anchors < MAX_ANCHORS ? items.length : -1;
      if (anchorAt >= 0) items.push(ANCHOR);
      for (let i = resume; i < todo.length; i++) this.#push(items, todo[i]!, encoded);
      const lastUnitItem = items.length - 1;
      items.push(...closing);
      const outcome = await this.#send(client, items);
      this.#collect(items, outcome, outcomes);
      const failure = outcome.failure;
      if (failure === undefined) {
        if (closing.includes(COMMIT)) {
          const committed = outcome.results[items.indexOf(COMMIT)];
          if (committed?.command !== 'COMMIT') {
            throw new BatchAbort(new Error(`COMMIT answered ${committed?.command}`), 'COMMIT');
          }
        }
        return;
      }
      if (failure.index > lastUnitItem) progress.complete = true;
      const item = items[failure.index];
      if (item?.unit === undefined || pgFatalCode(failure.error) !== undefined) {
        throw new BatchAbort(failure.error, item?.control);
      }
      const pos = todo.indexOf(item.unit);
      if (sqlState(failure.error) === '0A000' && item.parse === false && !planRetried) {
        // "cached plan must not change result type": the schema changed under a prepared
        // statement. Forget them all and run the unit again rather than fail it.
        planRetried = true;
        this.#cache.invalidateAll();
      } else {
        outcomes[item.unit] = { ok: false, error: toWireError(toPostgresError(failure.error)) };
        todo.splice(pos, 1);
      }
      if (anchorAt >= 0 && anchorAt < failure.index) {
        anchor = 'savepoint';
        anchors++;
        redoFrom = resume;
      }
      resume = pos;
      recovering = true;
    }
  }

  /** Appends a unit's statements to a round, prepared statements where cached. */
  #push(items: Item[], unit: number, encoded: (Encoded | undefined)[]): void {
    const statements = encoded[unit]!.statements;
    if (this.#checked) items.push({ ...DEFER_CONSTRAINTS, unit, index: -1 });
    for (let i = 0; i < statements.length; i++) {
      const s = statements[i]!;
      const { name, parse } = this.#cache.lookup(s.sql);
      items.push({ sql: s.sql, params: s.params, name, parse, unit, index: i });
    }
    // Deferred checks fire here, failing this unit (the writer's own statement, its unit's).
    if (this.#checked) items.push({ ...CHECK_CONSTRAINTS, unit, index: -1 });
  }

  /** True when the batch failed at COMMIT on an integrity constraint and can be re-run. */
  #deferredCheckFailed(error: unknown, units: WireUnit[]): boolean {
    return (
      error instanceof BatchAbort &&
      error.control === 'COMMIT' &&
      (sqlState(error.cause)?.startsWith('23') ?? false) &&
      units.length > 1 &&
      units.every((u) => u.kind === 'statements')
    );
  }

  /** Sends one round and keeps the prepared-statement cache in step with what the server did. */
  async #send(client: pg.Client, items: Item[]): Promise<PipelineOutcome> {
    const outcome = await this.#cache.run(client, items);
    const at = items.indexOf(XID);
    const xid = at < 0 ? undefined : outcome.results[at]?.rows[0]?.xid;
    if (typeof xid === 'string') this.#xid = xid;
    return outcome;
  }

  /** Stores each completed unit's results (a later replay overwrites them). */
  #collect(items: Item[], outcome: PipelineOutcome, outcomes: (UnitOutcome | undefined)[]): void {
    const done = outcome.failure?.index ?? items.length;
    let i = 0;
    while (i < done) {
      const unit = items[i]!.unit;
      if (unit === undefined) {
        i++;
        continue;
      }
      const results: StatementResult[] = [];
      let j = i;
      for (; j < items.length && items[j]!.unit === unit; j++) {
        if (j < done && items[j]!.index !== -1) {
          results.push(toStatementResult(outcome.results[j]!));
        }
      }
      if (j <= done) outcomes[unit] = { ok: true, results };
      i = j;
    }
  }

  /** Serves an interactive transaction under its own savepoint until it ends. */
  async #runInteractive(client: pg.Client, txId: number, timeoutMs: number): Promise<UnitOutcome> {
    const how = await new Promise<TxEnd>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      this.#activeTx = {
        txId,
        end: resolve,
        timer,
        failed: undefined,
        running: undefined,
        timedOut: false,
        timeoutMs,
      };
      this.#tx.get(txId)?.ready();
    });
    const tx = this.#activeTx!;
    this.#activeTx = undefined;
    clearTimeout(tx.timer);
    if (typeof how === 'object') throw new BatchAbort(how.abort);
    tx.timedOut = how === 'timeout';
    if (tx.timedOut && tx.running !== undefined) await this.#cancel(client);
    await tx.running?.catch(() => {});
    if (this.#client !== client) throw new BatchAbort(new Error('Connection lost'));
    if (how === 'commit' && tx.failed === undefined) {
      const released = await this.#cache.run(client, [RELEASE_UNIT]);
      if (released.failure === undefined) return { ok: true, results: [] };
      tx.failed = released.failure.error;
    }
    const undone = await this.#cache.run(client, [TO_UNIT, RELEASE_UNIT]);
    if (undone.failure !== undefined) throw new BatchAbort(undone.failure.error, 'ROLLBACK TO');
    if (how === 'timeout') {
      this.#tx.get(txId)?.timedOut();
      return failed(txTimeout(timeoutMs));
    }
    if (how === 'commit') {
      const cause = toPostgresError(tx.failed);
      const message = `The transaction was rolled back: a statement in it failed (${cause.message})`;
      return failed(new PostgresError(message, cause.code, cause));
    }
    return failed(new Error('The transaction was rolled back'));
  }

  /** Asks the server to cancel the statement the writer's session runs now. */
  async #cancel(client: pg.Client): Promise<void> {
    const pid = (client as pg.Client & { processID?: number }).processID;
    try {
      const other = await connectClient(this.#config.url, 'walguard canceller');
      try {
        await other.query('SELECT pg_cancel_backend($1)', [pid]);
      } finally {
        await other.end().catch(() => {});
      }
    } catch (error) {
      this.#log.warn({ err: error }, 'could not cancel a timed-out transaction statement');
    }
  }

  /** Registers an interactive transaction's callbacks before its unit is queued. */
  watchTx(txId: number, listener: TxListener): void {
    this.#tx.set(txId, listener);
  }

  /** Forgets an interactive transaction. */
  unwatchTx(txId: number): void {
    this.#tx.delete(txId);
  }

  /** Runs one statement inside interactive transaction `txId`. */
  async txExec(txId: number, statement: WireStatement): Promise<StatementResult> {
    const tx = this.#requireTx(txId);
    const refused = refusedStatement(statement.sql, 'transaction');
    if (refused !== undefined) throw refusedStatementError(refused, 'transaction');
    const client = this.#client;
    if (client === undefined) throw lostError(this.#config.url, new Error('Connection lost'));
    const run = this.#cache.run(client, [
      { sql: statement.sql, params: toWireParams(statement.params) },
    ]);
    tx.running = run;
    const outcome = await run;
    if (tx.running === run) tx.running = undefined;
    if (outcome.failure === undefined) return toStatementResult(outcome.results[0]!);
    const error = outcome.failure.error;
    if (pgFatalCode(error) !== undefined) {
      tx.end({ abort: error });
      throw asWalguard(error, pgFatalCode(error)!, this.#config.url);
    }
    // The timeout cancelled this statement: say so, as the transaction's outcome does.
    if (tx.timedOut) throw txTimeout(tx.timeoutMs);
    // As in any PostgreSQL transaction, the rest of it now fails until it is rolled back.
    tx.failed ??= error;
    throw toPostgresError(error);
  }

  /** Ends interactive transaction `txId`: commit releases its savepoint, rollback undoes it. */
  async txEnd(txId: number, commit: boolean): Promise<void> {
    this.#requireTx(txId).end(commit ? 'commit' : 'rollback');
  }

  #requireTx(txId: number): ActiveTx {
    return requireActiveTx(this.#activeTx, txId);
  }

  /** A failed batch whose connection is gone: find out what the server did, then report it. */
  async #lost(
    client: pg.Client,
    cause: unknown,
    complete: boolean,
    reply: (error?: WireError) => BatchReply,
  ): Promise<BatchReply> {
    if (this.#client === client) this.#client = undefined;
    const pid = (client as pg.Client & { processID?: number }).processID;
    client.end().catch(() => {});
    const xid = this.#xid;
    // Without the id the batch may still have committed: a lone unit does not ask for it, and
    // a batch's may be lost on the way back (every batch sends before it can be lost).
    const outcome: TxOutcome =
      xid === undefined ? 'unknown' : await resolveOutcome(this.#config.url, xid, pid);
    this.#log.warn({ xid, outcome }, 'a batch lost its PostgreSQL connection');
    if (outcome === 'committed' && complete) {
      // Every unit's result arrived before the connection went, and the server says the
      // transaction committed: the acknowledgements are true.
      return reply();
    }
    const reason = (cause as { message?: string } | null)?.message ?? String(cause);
    const said = {
      'rolled back': 'it was rolled back: none of its writes are visible',
      committed:
        'it COMMITTED, but some of its results were lost with the connection: its writes are in the database although its units are rejected',
      unknown:
        'whether it committed could not be established (the server stayed unreachable, or the batch was a lone unit, which does not ask for its transaction id): look for its writes',
    }[outcome];
    return reply(
      toWireError(
        new WalguardError(
          'IO_ERROR',
          `The connection to PostgreSQL at ${redactUrl(this.#config.url)} was lost during a batch; ${said} (${reason})`,
          { cause, details: { outcome, xid } },
        ),
      ),
    );
  }

  async #rollbackQuietly(client: pg.Client): Promise<void> {
    try {
      await client.query('ROLLBACK');
    } catch (error) {
      this.#log.warn({ err: error }, 'ROLLBACK after a failed batch failed');
      if (this.#client === client) this.#client = undefined;
      client.end().catch(() => {});
    }
  }

  /** Closes the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => {});
  }
}

/** The error of a transaction that outlived its timeout. */
function txTimeout(timeoutMs: number): WalguardError {
  return new WalguardError(
    'TX_TIMEOUT',
    `The transaction did not finish within ${timeoutMs} ms (transactionTimeoutMs; migrationTimeoutMs for a migration) and was rolled back`,
  );
}

/** A unit outcome for a failed unit. */
function failed(error: Error): UnitOutcome {
  return { ok: false, error: toWireError(error) };
}

/** A pipeline statement's result as Kysely expects it. */
function toStatementResult(r: {
  returnsRows: boolean;
  rows: Record<string, unknown>[];
  rowCount: number | null;
}): StatementResult {
  if (r.returnsRows) return { rows: r.rows };
  return { rows: [], numAffectedRows: BigInt(r.rowCount ?? 0) };
}

/** The error of a batch that failed whole for a reason of its own (a failing COMMIT). */
function batchError(cause: unknown, what: string | undefined): WireError {
  const state = sqlState(cause);
  if (state === undefined) return toWireError(toUnitError(cause));
  const e = toPostgresError(cause);
  const message = `The batch was rolled back and none of its writes are visible: ${what ?? 'a statement of the writer'} failed (${e.message})`;
  return toWireError(new PostgresError(message, e.code, e));
}

/** A fatal error as walguard's error of `code`. */
function asWalguard(error: unknown, code: WalguardErrorCode, url: string): WalguardError {
  if (error instanceof WalguardError) return error;
  if (code === 'IO_ERROR') return lostError(url, error);
  const reason = (error as { message?: string } | null)?.message ?? String(error);
  return new WalguardError(
    code,
    `The batch was rolled back and none of its writes are visible: ${reason}`,
    { cause: error },
  );
}

function lostError(url: string, cause: unknown): WalguardError {
  const reason = (cause as { message?: string } | null)?.message ?? String(cause);
  return new WalguardError(
    'IO_ERROR',
    `No connection to PostgreSQL at ${redactUrl(url)}: ${reason}. Nothing of the batch was applied`,
    { cause },
  );
}
