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
 * - A batch of deferred units only runs with `synchronous=NORMAL` for its own COMMIT (WAL
 *   frames written, not fsynced); the level is restored before the next batch, whose FULL
 *   commit fsyncs the WAL and so makes the earlier frames durable too.
 * - An error that breaks the transaction itself (disk full, I/O error, corruption, a lock we
 *   could not get, or the engine having rolled back on its own) fails every unit of the batch
 *   with one `WalguardError`; the transaction is rolled back, so nothing of it is visible. After
 *   an I/O error or corruption the connection is reopened before the next batch: SQLite may
 *   have left it in a state we cannot trust (cf. PostgreSQL's "fsyncgate": after a failed
 *   fsync, the page cache may have dropped the dirty pages).
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
import { batchFatalCode, toWireError, WalguardError, type WireError } from '../errors.js';
import { bindable, toObjects } from '../row-codec.js';
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

/** The end of an interactive transaction, as decided by its owner or its timer. */
type TxEnd = 'commit' | 'rollback' | 'timeout' | { abort: unknown };

/** The interactive transaction the writer is waiting on. */
interface ActiveTx {
  /** Its id. */
  txId: number;
  /** Settles the wait with how it ended. */
  end: (how: TxEnd) => void;
  /** Its timeout timer. */
  timer: NodeJS.Timeout;
}

/** Most prepared statements kept; least recently used ones are dropped past it. */
const STATEMENT_CACHE_SIZE = 512;

/** Matches SQL whose conflict resolution may keep part of a failed statement's changes. */
const FAIL_WORD = /\bfail\b/i;

const NO_PARAMS: unknown[] = [];

/** Thrown inside a batch to abandon it whole. */
class BatchAbort {
  constructor(readonly cause: unknown) {}
}

export class Writer {
  /** The writer connection; replaced when the writer recovers by reopening. */
  #db: SqliteDatabase;
  /** Prepared statements by SQL text, in least-recently-used order. Guarded by: one batch at a time. */
  #cache = new Map<string, SqliteStatement>();
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
  /** True when a trigger may RAISE(FAIL): every unit then keeps its savepoint. */
  #failTriggers = true;

  private constructor(
    db: SqliteDatabase,
    open: OpenConnection,
    settings: ConnectionSettings,
    host: WriterHost,
    transactionTimeoutMs: number,
  ) {
    this.#db = db;
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

  /** Runs one batch as one transaction; see the file header for the strategy. */
  async runBatch(batch: WireBatch, durable: boolean): Promise<WireBatchReply> {
    const started = performance.now();
    const statements = batch.sql.length;
    const reply: WireBatchReply = {
      unitErrors: [],
      rows: [],
      changes: new Float64Array(statements),
      insertIds: new BigInt64Array(statements),
      commitMs: 0,
    };
    if (this.#broken !== undefined) {
      reply.error = batchError(this.#broken);
      return reply;
    }
    const relax = !durable && this.#settings.synchronous !== 'NORMAL';
    try {
      if (relax) this.#db.exec('PRAGMA synchronous = NORMAL');
      this.#statement('BEGIN IMMEDIATE').run();
      this.#refreshSchemaFacts();
      let s = 0;
      let p = 0;
      let tx = 0;
      for (let u = 0; u < batch.sizes.length; u++) {
        const size = batch.sizes[u]!;
        if (size === 0) {
          const error = await this.#runInteractiveUnit(
            batch.txIds[tx]!,
            batch.txTimeouts[tx] || this.#transactionTimeoutMs,
          );
          tx++;
          if (error !== undefined) reply.unitErrors.push([u, error]);
          continue;
        }
        const error = this.#runStatementsUnit(batch, s, p, size, reply);
        if (error !== undefined) reply.unitErrors.push([u, error]);
        for (let i = 0; i < size; i++) p += batch.paramCounts[s + i]!;
        s += size;
      }
      this.#statement('COMMIT').run();
    } catch (error) {
      const cause = error instanceof BatchAbort ? error.cause : error;
      reply.error = batchError(cause);
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
    reply.commitMs = performance.now() - started;
    return reply;
  }

  /**
   * Runs one unit's statements (batch statements `first`..`first + size - 1`, parameters from
   * `param`), all or nothing, writing results into `reply`; returns the unit's error, if any.
   *
   * A unit of one statement runs without a savepoint: SQLite already undoes a failed
   * statement's changes (the default ABORT conflict resolution), and the two extra statements
   * per unit halved the writer's throughput (each libsql call costs ~6 µs here). Exceptions
   * keep the savepoint: SQL that mentions FAIL (`INSERT OR FAIL`, `ON CONFLICT … FAIL`, which
   * keep the rows changed before the failure) and any schema with a trigger that can RAISE a
   * FAIL. An `OR ROLLBACK` ends the whole transaction, which is caught as a batch failure.
   */
  #runStatementsUnit(
    batch: WireBatch,
    first: number,
    param: number,
    size: number,
    reply: WireBatchReply,
  ): WireError | undefined {
    const savepoint = size > 1 || this.#failTriggers || FAIL_WORD.test(batch.sql[first]!);
    if (savepoint) this.#statement('SAVEPOINT wg_unit').run();
    try {
      let p = param;
      for (let s = first; s < first + size; s++) {
        const count = batch.paramCounts[s]!;
        const params = count === 0 ? NO_PARAMS : batch.params.slice(p, p + count);
        p += count;
        this.#executeInto(batch.sql[s]!, params, s, reply);
      }
      if (savepoint) this.#statement('RELEASE wg_unit').run();
      return undefined;
    } catch (error) {
      this.#rollbackUnit(error, savepoint);
      return toWireError(error);
    }
  }

  /** Runs one statement and records its result in the batch reply. */
  #executeInto(sql: string, params: unknown[], index: number, reply: WireBatchReply): void {
    const statement = this.#statement(sql);
    const bound = bindable(params);
    if (statement.reader) {
      reply.rows.push([index, toObjects(statement, statement.all(bound) as unknown[][])]);
      reply.changes[index] = Number.NaN;
      return;
    }
    const { changes, lastInsertRowid } = statement.run(bound);
    reply.changes[index] = changes;
    reply.insertIds[index] = BigInt(lastInsertRowid);
  }

  /** Re-reads schema facts the savepoint policy depends on, when the schema changed. */
  #refreshSchemaFacts(): void {
    const version = (this.#statement('PRAGMA schema_version').get() as number[])[0] ?? 0;
    if (version === this.#schemaVersion) return;
    this.#schemaVersion = version;
    const row = this.#db
      .prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger' AND sql LIKE '%fail%'")
      .raw(true)
      .get() as number[];
    this.#failTriggers = (row[0] ?? 0) > 0;
  }

  /** Opens an interactive transaction's savepoint and serves it until it ends. */
  async #runInteractiveUnit(txId: number, timeoutMs: number): Promise<WireError | undefined> {
    this.#statement('SAVEPOINT wg_unit').run();
    const how = await new Promise<TxEnd>((resolve) => {
      const timer = setTimeout(() => resolve('timeout'), timeoutMs);
      this.#activeTx = { txId, end: resolve, timer };
      this.#host.txReady(txId);
    });
    clearTimeout(this.#activeTx?.timer);
    this.#activeTx = undefined;
    if (how === 'commit') {
      this.#statement('RELEASE wg_unit').run();
      return undefined;
    }
    if (typeof how === 'object') {
      throw new BatchAbort(how.abort);
    }
    this.#rollbackUnit(undefined, true);
    if (how === 'timeout') {
      this.#host.txTimedOut(txId);
      const error = new WalguardError(
        'TX_TIMEOUT',
        `The transaction did not finish within ${timeoutMs} ms (transactionTimeoutMs; migrationTimeoutMs for a migration) and was rolled back`,
      );
      return toWireError(error);
    }
    return toWireError(new Error('The transaction was rolled back'));
  }

  /** Runs one statement of the active interactive transaction. */
  txExec(txId: number, statement: WireStatement): StatementResult {
    const tx = this.#requireTx(txId);
    try {
      return this.#execute(statement);
    } catch (error) {
      if (batchFatalCode(error) !== undefined || !this.#db.inTransaction) {
        tx.end({ abort: error });
      }
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

  /** Rolls back the current unit (its savepoint, if it has one); escalates when the transaction itself is gone. */
  #rollbackUnit(error: unknown, savepoint: boolean): void {
    if (error !== undefined && batchFatalCode(error) !== undefined) throw new BatchAbort(error);
    if (!this.#db.inTransaction) {
      throw new BatchAbort(error ?? new Error('SQLite rolled the transaction back on its own'));
    }
    if (!savepoint) return;
    this.#statement('ROLLBACK TO wg_unit').run();
    this.#statement('RELEASE wg_unit').run();
  }

  /** Runs one statement, Kysely-style: rows when it returns rows, counts otherwise. */
  #execute({ sql, params }: WireStatement): StatementResult {
    const statement = this.#statement(sql);
    const bound = bindable(params);
    if (statement.reader) {
      return { rows: toObjects(statement, statement.all(bound) as unknown[][]) };
    }
    const { changes, lastInsertRowid } = statement.run(bound);
    return { rows: [], numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid) };
  }

  /** A prepared statement from the cache (raw mode for readers: see `toObjects`). */
  #statement(sql: string): SqliteStatement {
    let statement = this.#cache.get(sql);
    if (statement !== undefined) {
      // Re-insert to keep the map in least-recently-used order.
      this.#cache.delete(sql);
    } else {
      statement = this.#db.prepare(sql);
      if (statement.reader) statement.raw(true);
      if (this.#cache.size >= STATEMENT_CACHE_SIZE) {
        this.#cache.delete(this.#cache.keys().next().value as string);
      }
    }
    this.#cache.set(sql, statement);
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
      this.#cache.clear();
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
    this.#cache.clear();
    this.#db.close();
  }
}

/** The error every unit of a failed batch receives. */
function batchError(cause: unknown): WireError {
  if (cause instanceof WalguardError) return toWireError(cause);
  const code = batchFatalCode(cause) ?? 'IO_ERROR';
  const reason = (cause as { message?: string } | null)?.message ?? String(cause);
  const what = {
    DISK_FULL: 'the disk is full',
    IO_ERROR: 'the operating system reported an I/O error',
    CORRUPT: 'the database file is damaged',
    LOCKED: 'another connection holds the database lock',
  }[code as 'DISK_FULL' | 'IO_ERROR' | 'CORRUPT' | 'LOCKED'];
  return toWireError(
    new WalguardError(
      code,
      `The batch was rolled back and none of its writes are visible: ${what ?? reason} (${reason})`,
      { cause },
    ),
  );
}
