/**
 * The writer: the only connection that ever writes, and the code that turns a batch of units
 * into one transaction. It runs inside the writer worker thread (see `writer-worker.ts`),
 * because the engine's calls are synchronous and a COMMIT's fsync must not stall the app's
 * event loop.
 *
 * Strategy, per batch:
 *   BEGIN IMMEDIATE
 *     for each unit: SAVEPOINT; its statements; RELEASE
 *                    (on a unit's SQL error: ROLLBACK TO; RELEASE; that unit alone fails)
 *   COMMIT            ← the single fsync shared by every unit of the batch
 *
 * Invariants:
 * - A batch's outcomes are reported only after COMMIT returned, so no caller is acknowledged
 *   before its data is durable under the connection's `synchronous` level.
 * - A unit is all or nothing whatever the schema, triggers or statement say. Its statements
 *   are checked before they are prepared (`statement-guard.ts`): nothing may end, start or
 *   escape the transaction, or change a connection setting. A conflict resolution of
 *   ROLLBACK (`INSERT OR ROLLBACK`, a table's `ON CONFLICT ROLLBACK`, a trigger's
 *   `RAISE(ROLLBACK)`) ends SQLite's whole transaction, undoing every unit before it in the
 *   batch: that unit fails alone with its own SQLite code, and the writer *rewinds* — it
 *   begins again and re-runs the units undone (their statements are known; their results are
 *   taken from the re-run). An interactive transaction cannot be re-run (the app decided its
 *   statements from what it read), so one that such a rollback undid is rejected with
 *   `SQLITE_ABORT_ROLLBACK`; to make that rare, when the schema holds a ROLLBACK clause (or
 *   the next unit's SQL says ROLLBACK) the batch is committed right after an interactive
 *   transaction, before the units that could undo it.
 * - A batch of deferred units only runs with `synchronous=NORMAL` for its own COMMIT (WAL
 *   frames written, not fsynced); the level is restored before the next batch, whose FULL
 *   commit fsyncs the WAL and so makes the earlier frames durable too.
 * - An error that breaks the transaction itself (disk full, I/O error, corruption, a lock we
 *   could not get) fails every unit not yet committed with one `WalguardError`; the
 *   transaction is rolled back, so nothing of it is visible. After an I/O error or corruption
 *   the connection is reopened before the next batch: SQLite may have left it in a state we
 *   cannot trust (cf. PostgreSQL's "fsyncgate": after a failed fsync, the page cache may have
 *   dropped the dirty pages).
 * - No statement is left mid-run (see `statement-cache.ts`), so COMMIT never meets this
 *   connection's own "statements in progress".
 * - Batches never overlap: the main thread sends the next one only after this one replied
 *   (p-queue with concurrency 1 in `WriteQueue`), and checkpoints and pragmas go through the
 *   same queue, so they never run inside a batch.
 */
import { performance } from 'node:perf_hooks';
import {
  applyConnectionSettings,
  type ConnectionSettings,
  type SettingsReadBack,
} from '../durability/connection-settings.js';
import {
  batchFatalCode,
  SqliteError,
  toWireError,
  WalguardError,
  type WireError,
} from '../errors.js';
import type { SqliteDatabase, SqliteStatement } from '../sqlite-types.js';
import { requireActiveTx } from '../tx/active-tx.js';
import type {
  CheckpointMode,
  CheckpointResult,
  StatementResult,
  WireBatch,
  WireBatchReply,
  WireStatement,
} from './protocol.js';
import { type PreparedStatement, StatementCache } from './statement-cache.js';
import { type StatementContext, UNIT_SAVEPOINT } from './statement-guard.js';

/** How the writer reaches the main thread for interactive transactions. */
export interface WriterHost {
  /** Tells the main thread that transaction `txId` has its savepoint and may send statements. */
  txReady(txId: number): void;
  /** Tells the main thread that transaction `txId` was rolled back because it timed out. */
  txTimedOut(txId: number): void;
  /** Logs a message through the main thread's logger. */
  log(level: 'info' | 'warn' | 'error', msg: string, data?: Record<string, unknown>): void;
}

/** How a connection is (re)opened. */
export type OpenConnection = () => Promise<SqliteDatabase>;

/**
 * The end of an interactive transaction, as decided by its owner or its timer; `abort` when a
 * statement broke the batch's transaction, `gone` when a conflict resolution rolled it back.
 */
type TxEnd = 'commit' | 'rollback' | 'timeout' | { abort: unknown } | { gone: unknown };

/** The interactive transaction the writer is waiting on. */
interface ActiveTx {
  /** Its id. */
  txId: number;
  /** Settles the wait with how it ended. */
  end: (how: TxEnd) => void;
  /** Its timeout timer. */
  timer: NodeJS.Timeout;
}

/** How one unit ended: its error, if any, and whether SQLite's transaction ended with it. */
interface UnitEnd {
  error: WireError | undefined;
  /** True when the unit's failure rolled back SQLite's whole transaction (ROLLBACK resolution). */
  gone: boolean;
}

const OK: UnitEnd = { error: undefined, gone: false };

/** SQL whose conflict resolution may keep part of a failed statement's changes. */
const FAIL_WORD = /\bfail\b/i;

/** SQL that may name a ROLLBACK conflict resolution. */
const ROLLBACK_WORD = /\brollback\b/i;

/** Statements that change the schema (and so, maybe, the facts the savepoint policy reads). */
const DDL_VERBS = new Set(['CREATE', 'DROP', 'ALTER']);

const NO_PARAMS: unknown[] = [];

/** Thrown inside a batch to abandon it whole. */
class BatchAbort {
  constructor(readonly cause: unknown) {}
}

/** Where each unit of a batch starts in its flat arrays. */
interface BatchLayout {
  /** First statement of each unit. */
  statement: Uint32Array;
  /** First parameter of each unit. */
  param: Uint32Array;
  /** Index into `txIds` of each interactive unit (-1 for statement units). */
  tx: Int32Array;
}

export class Writer {
  /** The writer connection; replaced when the writer recovers by reopening. */
  #db: SqliteDatabase;
  /** The app's statements, guarded. Guarded by: one batch at a time. */
  #statements: StatementCache;
  /** walguard's own statements (BEGIN, SAVEPOINT, …), which the guard would refuse. */
  #internal = new Map<string, SqliteStatement>();
  /** The interactive transaction in progress, if any. */
  #activeTx: ActiveTx | undefined;
  readonly #open: OpenConnection;
  readonly #settings: ConnectionSettings;
  readonly #host: WriterHost;
  readonly #transactionTimeoutMs: number;
  /** Set when reopening failed: every later batch fails with it. */
  #broken: unknown;
  /** `schema_version` when the schema facts below were read. */
  #schemaVersion = -1;
  /** True when a table or trigger may FAIL (keep a failed statement's earlier rows): every unit then keeps its savepoint. */
  #failRisk = true;
  /** True when a table or trigger may ROLLBACK the whole transaction. */
  #rollbackRisk = true;

  private constructor(
    db: SqliteDatabase,
    open: OpenConnection,
    settings: ConnectionSettings,
    host: WriterHost,
    transactionTimeoutMs: number,
  ) {
    this.#db = db;
    this.#statements = new StatementCache(db, { safeIntegers: settings.safeIntegers === true });
    this.#open = open;
    this.#settings = settings;
    this.#host = host;
    this.#transactionTimeoutMs = transactionTimeoutMs;
  }

  /** Opens the writer connection, applies and verifies its settings. */
  static async open(
    open: OpenConnection,
    settings: ConnectionSettings,
    host: WriterHost,
    transactionTimeoutMs: number,
  ): Promise<{ writer: Writer; readBack: SettingsReadBack }> {
    const db = await open();
    const readBack = applyConnectionSettings(db, 'writer', settings);
    return { writer: new Writer(db, open, settings, host, transactionTimeoutMs), readBack };
  }

  /** Runs one batch as one transaction (or more, see the file header). */
  async runBatch(batch: WireBatch, durable: boolean): Promise<WireBatchReply> {
    const started = performance.now();
    const units = batch.sizes.length;
    const reply: WireBatchReply = {
      unitErrors: [],
      rows: [],
      changes: new Float64Array(batch.sql.length),
      insertIds: new BigInt64Array(batch.sql.length),
      commitMs: 0,
    };
    if (this.#broken !== undefined) {
      reply.error = batchError(this.#broken);
      return reply;
    }
    const layout = layoutOf(batch);
    /** Each unit's error, once it ran. */
    const errors = new Array<WireError | undefined>(units);
    /** Units whose outcome no rewind may change (they ended SQLite's transaction, or were undone with it). */
    const final = new Uint8Array(units);
    /** The first unit of the SQLite transaction now open; the units before it are committed. */
    let segment = 0;
    const relax = !durable && this.#settings.synchronous !== 'NORMAL';
    try {
      if (relax) this.#db.exec('PRAGMA synchronous = NORMAL');
      this.#begin();
      let interactiveInSegment = false;
      let u = 0;
      while (u < units) {
        if (final[u] === 1) {
          u++;
          continue;
        }
        const size = batch.sizes[u]!;
        if (size > 0 && interactiveInSegment && this.#mayRollBack(batch, layout, u)) {
          // Commit the interactive transaction before a unit that could undo it.
          this.#commitSegment();
          segment = u;
          interactiveInSegment = false;
        }
        const end =
          size === 0
            ? await this.#runInteractiveUnit(
                batch.txIds[layout.tx[u]!]!,
                batch.txTimeouts[layout.tx[u]!] || this.#transactionTimeoutMs,
              )
            : this.#runStatementsUnit(batch, layout, u, reply);
        errors[u] = end.error;
        if (end.gone) {
          // SQLite rolled back everything since `segment`: this unit fails alone; re-run the rest.
          final[u] = 1;
          this.#rewind(batch, layout, segment, u, errors, final, reply);
          interactiveInSegment = false;
          u = segment;
          continue;
        }
        if (size === 0 && end.error === undefined) {
          interactiveInSegment = true;
          if (this.#rollbackRisk && u + 1 < units) {
            this.#commitSegment();
            segment = u + 1;
            interactiveInSegment = false;
          }
        }
        u++;
      }
      this.#internalStatement('COMMIT').run();
      segment = units;
    } catch (error) {
      const cause = error instanceof BatchAbort ? error.cause : error;
      reply.error = batchError(cause);
      if (segment > 0) reply.committed = segment;
      reply.reopened = await this.#recover(cause);
      if (batchFatalCode(cause) === 'IO_ERROR' && this.#broken === undefined) {
        if (relax) this.#restoreSynchronous();
        if (!this.#fence()) {
          reply.error = {
            ...reply.error,
            message: `${reply.error.message}. The fence commit and checkpoint that make this failure final did not complete: these writes may reappear, and recent deferred writes may be lost, after a crash`,
            details: { ...reply.error.details, outcome: 'unknown' },
          };
        }
      }
    } finally {
      if (relax) this.#restoreSynchronous();
    }
    for (let u = 0; u < Math.min(segment, units); u++) {
      if (errors[u] !== undefined) reply.unitErrors.push([u, errors[u]!]);
    }
    reply.commitMs = performance.now() - started;
    return reply;
  }

  /** BEGIN IMMEDIATE, and the schema facts for this transaction. */
  #begin(): void {
    this.#internalStatement('BEGIN IMMEDIATE').run();
    this.#refreshSchemaFacts();
  }

  /** Commits what ran so far and begins again (the same `synchronous` level applies). */
  #commitSegment(): void {
    this.#internalStatement('COMMIT').run();
    this.#begin();
  }

  /**
   * After SQLite rolled back its transaction at unit `failed`: rejects the interactive units
   * it undid (they cannot be re-run), forgets the results of the statement units it undid
   * (they run again), and begins a new transaction.
   */
  #rewind(
    batch: WireBatch,
    layout: BatchLayout,
    segment: number,
    failed: number,
    errors: (WireError | undefined)[],
    final: Uint8Array,
    reply: WireBatchReply,
  ): void {
    for (let v = segment; v < failed; v++) {
      if (final[v] === 1) continue;
      if (batch.sizes[v] === 0) {
        // It ran (or was rolled back by its owner) and cannot run again.
        errors[v] ??= toWireError(undoneByRollback());
        final[v] = 1;
      } else {
        errors[v] = undefined;
      }
    }
    const first = layout.statement[segment]!;
    while (reply.rows.length > 0 && reply.rows[reply.rows.length - 1]![0] >= first) {
      reply.rows.pop();
    }
    this.#host.log(
      'warn',
      'a ROLLBACK conflict resolution ended the batch transaction; re-running the units it undid',
      {
        unit: failed,
        rerun: failed - segment,
      },
    );
    this.#begin();
  }

  /** True when unit `u`'s SQL, or the schema, may name a ROLLBACK resolution. */
  #mayRollBack(batch: WireBatch, layout: BatchLayout, u: number): boolean {
    if (this.#rollbackRisk) return true;
    const first = layout.statement[u]!;
    for (let s = first; s < first + batch.sizes[u]!; s++) {
      if (ROLLBACK_WORD.test(batch.sql[s]!)) return true;
    }
    return false;
  }

  /**
   * Runs unit `u`'s statements, all or nothing, writing results into `reply`.
   *
   * A unit of one statement runs without a savepoint where that is provably safe: SQLite
   * already undoes a failed statement's changes under the default ABORT resolution, and the
   * two extra statements per unit cost the writer a third of its throughput (bench/
   * savepoint-cost.ts: see the figure in the commit that added it). The savepoint stays
   * whenever a failed statement could keep part of its changes — its SQL mentions FAIL
   * (`INSERT OR FAIL`), or any table or trigger of the schema does (`UNIQUE ON CONFLICT
   * FAIL`, `RAISE(FAIL)`). A ROLLBACK resolution ends the whole transaction either way; the
   * caller rewinds.
   */
  #runStatementsUnit(
    batch: WireBatch,
    layout: BatchLayout,
    u: number,
    reply: WireBatchReply,
  ): UnitEnd {
    const first = layout.statement[u]!;
    const size = batch.sizes[u]!;
    const savepoint = size > 1 || this.#failRisk || FAIL_WORD.test(batch.sql[first]!);
    if (savepoint) this.#internalStatement(`SAVEPOINT ${UNIT_SAVEPOINT}`).run();
    let ddl = false;
    let end: UnitEnd;
    try {
      let p = layout.param[u]!;
      for (let s = first; s < first + size; s++) {
        const count = batch.paramCounts[s]!;
        const params = count === 0 ? NO_PARAMS : batch.params.slice(p, p + count);
        p += count;
        const prepared = this.#statements.get(batch.sql[s]!, 'unit');
        if (DDL_VERBS.has(prepared.facts.verb)) ddl = true;
        if (prepared.names !== undefined) {
          reply.rows.push([s, this.#statements.rows(prepared, params)]);
          reply.changes[s] = Number.NaN;
        } else {
          const { changes, insertId } = this.#statements.run(prepared, params);
          reply.changes[s] = changes;
          reply.insertIds[s] = insertId;
        }
      }
      if (savepoint) this.#internalStatement(`RELEASE ${UNIT_SAVEPOINT}`).run();
      end = OK;
    } catch (error) {
      end = this.#unitFailed(error, savepoint);
    }
    if (ddl) this.#refreshSchemaFacts();
    return end;
  }

  /** Re-reads the schema facts the savepoint policy depends on, when the schema changed. */
  #refreshSchemaFacts(): void {
    const version = (this.#internalStatement('PRAGMA schema_version').get() as number[])[0] ?? 0;
    if (version === this.#schemaVersion) return;
    this.#schemaVersion = version;
    // Word matches on every table's and trigger's SQL (REGEXP in SQLite, so that no schema
    // text is ever converted by libsql): conservative, a column named `fail` keeps savepoints.
    const [fail, rollback] = this.#internalStatement(
      "SELECT count(*) FILTER (WHERE regexpi('\\bfail\\b', sql)), count(*) FILTER (WHERE regexpi('\\brollback\\b', sql)) FROM sqlite_schema WHERE type IN ('table', 'trigger') AND sql IS NOT NULL",
    ).get() as number[];
    this.#failRisk = (fail ?? 1) > 0;
    this.#rollbackRisk = (rollback ?? 1) > 0;
  }

  /** Opens an interactive transaction's savepoint and serves it until it ends. */
  async #runInteractiveUnit(txId: number, timeoutMs: number): Promise<UnitEnd> {
    this.#internalStatement(`SAVEPOINT ${UNIT_SAVEPOINT}`).run();
    const how = await new Promise<TxEnd>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      this.#activeTx = { txId, end: resolve, timer };
      this.#host.txReady(txId);
    });
    clearTimeout(this.#activeTx?.timer);
    this.#activeTx = undefined;
    // It may have changed the schema (a migration).
    if (this.#db.inTransaction) this.#refreshSchemaFacts();
    if (how === 'commit') {
      this.#internalStatement(`RELEASE ${UNIT_SAVEPOINT}`).run();
      return OK;
    }
    if (typeof how === 'object') {
      if ('gone' in how) return { error: toWireError(how.gone), gone: true };
      throw new BatchAbort(how.abort);
    }
    const end = this.#unitFailed(undefined, true);
    if (end.gone) return end;
    if (how === 'timeout') {
      this.#host.txTimedOut(txId);
      const error = new WalguardError(
        'TX_TIMEOUT',
        `The transaction did not finish within ${timeoutMs} ms (transactionTimeoutMs; migrationTimeoutMs for a migration) and was rolled back`,
      );
      return { error: toWireError(error), gone: false };
    }
    return { error: toWireError(new Error('The transaction was rolled back')), gone: false };
  }

  /** Runs one statement of the active interactive transaction. */
  txExec(txId: number, statement: WireStatement): StatementResult {
    const tx = this.#requireTx(txId);
    try {
      return this.#execute(statement, 'transaction');
    } catch (error) {
      if (batchFatalCode(error) !== undefined) tx.end({ abort: error });
      else if (!this.#db.inTransaction) tx.end({ gone: error });
      throw error;
    }
  }

  /** Ends the active interactive transaction: commit releases its savepoint, rollback undoes it. */
  txEnd(txId: number, commit: boolean): void {
    this.#requireTx(txId).end(commit ? 'commit' : 'rollback');
  }

  #requireTx(txId: number): ActiveTx {
    return requireActiveTx(this.#activeTx, txId);
  }

  /**
   * A unit failed with `error` (none: its owner rolled it back): undoes it (its savepoint, if
   * it has one) and says how it ended; escalates when the transaction itself is broken.
   */
  #unitFailed(error: unknown, savepoint: boolean): UnitEnd {
    if (error !== undefined && batchFatalCode(error) !== undefined) throw new BatchAbort(error);
    const wire = error === undefined ? undefined : toWireError(error);
    if (!this.#db.inTransaction) return { error: wire, gone: true };
    if (savepoint) {
      this.#internalStatement(`ROLLBACK TO ${UNIT_SAVEPOINT}`).run();
      this.#internalStatement(`RELEASE ${UNIT_SAVEPOINT}`).run();
    }
    return { error: wire, gone: false };
  }

  /** Runs one statement, Kysely-style: rows when it returns rows, counts otherwise. */
  #execute({ sql, params }: WireStatement, context: StatementContext): StatementResult {
    const prepared: PreparedStatement = this.#statements.get(sql, context);
    if (prepared.names !== undefined) return { rows: this.#statements.rows(prepared, params) };
    const { changes, insertId } = this.#statements.run(prepared, params);
    return { rows: [], numAffectedRows: BigInt(changes), insertId };
  }

  /** One of walguard's own statements, prepared once per connection. */
  #internalStatement(sql: string): SqliteStatement {
    let statement = this.#internal.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      if (statement.reader) statement.raw(true);
      this.#internal.set(sql, statement);
    }
    return statement;
  }

  /** Rolls back a failed batch and reopens the connection when it cannot be trusted. */
  async #recover(cause: unknown): Promise<boolean> {
    try {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
    } catch (error) {
      this.#host.log('warn', 'ROLLBACK after a failed batch failed', {
        code: (error as { code?: string }).code,
      });
    }
    const code = batchFatalCode(cause);
    if (code !== 'IO_ERROR' && code !== 'CORRUPT' && this.#probe()) return false;
    this.#host.log('warn', 'writer connection reopens after a failed batch', { code });
    try {
      const db = await this.#open();
      applyConnectionSettings(db, 'writer', this.#settings);
      const old = this.#db;
      this.#db = db;
      this.#statements = new StatementCache(db, {
        safeIntegers: this.#settings.safeIntegers === true,
      });
      this.#internal = new Map();
      this.#schemaVersion = -1;
      try {
        old.close();
      } catch {
        // The old connection is already unusable; closing it is best effort.
      }
      return true;
    } catch (error) {
      this.#broken = error;
      this.#host.log('error', 'writer connection could not be reopened; every write will fail', {
        code: (error as { code?: string }).code,
      });
      return false;
    }
  }

  /**
   * Makes a failed COMMIT final and the committed state independent of the failed fsync.
   * After an I/O error at COMMIT (an fsync that failed), the
   * failed transaction's frames are complete in the WAL file and the page cache; until the
   * next commit overwrites them, a crash lets WAL recovery replay them — a batch reported as
   * rejected would reappear (found by the power-loss harness on raw libsql). The fence is a
   * durable commit that writes one frame (`user_version` set to its own value rewrites page
   * 1) at the same WAL position: once it is on disk, recovery stops at the fence, since the
   * stale frames after it no longer continue the checksum chain.
   */
  #fence(): boolean {
    try {
      const version = (this.#db.prepare('PRAGMA user_version').raw(true).get() as number[])[0] ?? 0;
      this.#db.exec(`BEGIN IMMEDIATE; PRAGMA user_version = ${version}; COMMIT`);
      // Linux marks pages whose writeback failed as clean: WAL frames written since the last
      // successful fsync (deferred-only commits, which do not fsync) may never reach the disk
      // although the page cache still serves them. Every later commit extends that WAL, and
      // after a power loss recovery would stop at the hole, dropping acknowledged units
      // (found by the power-loss harness). A TRUNCATE checkpoint copies the committed state,
      // read back through the page cache, into the database file, fsyncs it, and empties the
      // WAL, so nothing acknowledged depends on the frames the failed fsync may have lost.
      const [busy] = this.#db
        .prepare('PRAGMA wal_checkpoint(TRUNCATE)')
        .raw(true)
        .get() as number[];
      if (busy === 1) {
        this.#host.log(
          'warn',
          'the checkpoint after an I/O error could not finish: a reader holds an old snapshot',
        );
        return false;
      }
      return true;
    } catch (error) {
      try {
        if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      } catch {
        // The connection is failing; the caller reports the outcome as unknown.
      }
      this.#host.log('error', 'the fence commit after an I/O error failed', {
        code: (error as { code?: string }).code,
      });
      return false;
    }
  }

  /** True when the connection still answers a read. */
  #probe(): boolean {
    try {
      this.#db.prepare('SELECT count(*) FROM sqlite_schema').raw(true).get();
      return true;
    } catch {
      return false;
    }
  }

  #restoreSynchronous(): void {
    try {
      this.#db.exec(`PRAGMA synchronous = ${this.#settings.synchronous}`);
    } catch (error) {
      // Never leave the writer at NORMAL: a later critical batch would be acknowledged
      // without its fsync. Mark the writer broken so that batches fail instead.
      this.#broken = error;
    }
  }

  /** Reads one PRAGMA on the writer connection. */
  pragma(name: string): unknown {
    return this.#db.prepare(`PRAGMA ${name}`).raw(true).get();
  }

  /** Runs `PRAGMA wal_checkpoint(mode)`. */
  checkpoint(mode: CheckpointMode): CheckpointResult {
    const started = performance.now();
    const row = this.#db.prepare(`PRAGMA wal_checkpoint(${mode})`).raw(true).get() as number[];
    return {
      mode,
      busy: row[0] === 1,
      logFrames: row[1] ?? 0,
      checkpointedFrames: row[2] ?? 0,
      durationMs: performance.now() - started,
    };
  }

  /** Closes the connection. */
  close(): void {
    this.#statements.clear();
    this.#internal.clear();
    this.#db.close();
  }
}

/** The error every unit of a failed batch receives. */
function batchError(cause: unknown): WireError {
  if (cause instanceof WalguardError) return toWireError(cause);
  const code = batchFatalCode(cause);
  const reason = (cause as { message?: string } | null)?.message ?? String(cause);
  if (code === undefined) {
    // Not one of walguard's conditions (no lock, disk or I/O problem): SQLite's own error.
    const { code: sqliteCode, rawCode } = toWireError(cause);
    return toWireError(
      new SqliteError(
        `The batch was rolled back and none of its writes are visible: ${reason}`,
        sqliteCode,
        rawCode,
      ),
    );
  }
  const what = {
    DISK_FULL: 'the disk is full',
    IO_ERROR: 'the operating system reported an I/O error',
    CORRUPT: 'the database file is damaged',
    LOCKED: 'another process holds the database lock',
  }[code as 'DISK_FULL' | 'IO_ERROR' | 'CORRUPT' | 'LOCKED'];
  return toWireError(
    new WalguardError(
      code,
      `The batch was rolled back and none of its writes are visible: ${what ?? reason} (${reason})`,
      { cause },
    ),
  );
}

/** The error of an interactive transaction that a later unit's ROLLBACK resolution undid. */
function undoneByRollback(): SqliteError {
  return new SqliteError(
    "The transaction was undone after it ended: a later unit of the same batch failed with a ROLLBACK conflict resolution (`OR ROLLBACK`, `ON CONFLICT ROLLBACK`, `RAISE(ROLLBACK)`), which rolls back SQLite's whole transaction. Nothing of this transaction was applied; it is safe to retry",
    'SQLITE_ABORT_ROLLBACK',
    516,
  );
}

/** Where each unit of `batch` starts in its flat arrays. */
function layoutOf(batch: WireBatch): BatchLayout {
  const units = batch.sizes.length;
  const layout: BatchLayout = {
    statement: new Uint32Array(units),
    param: new Uint32Array(units),
    tx: new Int32Array(units).fill(-1),
  };
  let s = 0;
  let p = 0;
  let tx = 0;
  for (let u = 0; u < units; u++) {
    const size = batch.sizes[u]!;
    layout.statement[u] = s;
    layout.param[u] = p;
    if (size === 0) layout.tx[u] = tx++;
    for (let i = 0; i < size; i++) p += batch.paramCounts[s + i]!;
    s += size;
  }
  return layout;
}
