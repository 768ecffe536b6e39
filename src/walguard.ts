/**
 * `Walguard<DB>`: an open database, and the app's whole public surface.
 *
 * It owns the write queue, the writer worker's handle, the reads (the main thread's reader and
 * the reader threads, `repo/read-router.ts`), and the Kysely instance,
 * and wires them together; the durability services around them (the open sequence and
 * recovery, integrity checks, checkpoints, backups, the process lock, shutdown) live in
 * `durability/`.
 *
 * One write, from the app to the fsync: `db.kysely.insertInto(…).execute()` compiles in
 * `WalguardExecutor` (repo/walguard-executor.ts), which stamps its submission ticket; the
 * router (repo/walguard-connection.ts) sees a write and calls `#submit` here; `#submit`
 * builds a `Unit` and adds it to the `WriteQueue` (queue/write-queue.ts), which batches it
 * with every unit queued meanwhile and hands the batch to `WriterClient` (queue/
 * writer-client.ts); the worker's `Writer` (queue/writer.ts) runs BEGIN IMMEDIATE, a
 * SAVEPOINT per unit, and the COMMIT whose fsync makes the batch durable. Only the reply to
 * that COMMIT settles the unit's promise.
 */
import { performance } from 'node:perf_hooks';
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import { applyConfigFile, type OptionsWithConfig } from './config/apply-config-file.js';
import { BackupService } from './durability/backup-service.js';
import type { BackupResult } from './durability/backups.js';
import { type CheckpointEvent, Checkpointer, walBytes } from './durability/checkpointer.js';
import { closeSequence } from './durability/close-sequence.js';
import {
  type CheckLevel,
  type CheckResult,
  IntegrityRecord,
  runIntegrityCheck,
} from './durability/integrity.js';
import { registerForShutdown } from './durability/shutdown.js';
import { WalguardError } from './errors.js';
import { TypedEvents, type WalguardEvents } from './events.js';
import { hasSubscribers, publish } from './metrics/channels.js';
import { fileEngine, type OpenedEngine, openEngine } from './open-engine.js';
import { type ResolvedOptions, resolveOptions, type WalguardOptions } from './options.js';
import type { CheckpointMode } from './queue/protocol.js';
import { SubmissionOrderPlugin } from './queue/submission-order.js';
import { type BatchInfo, WriteQueue } from './queue/write-queue.js';
import type { WriterPort } from './queue/writer-port.js';
import { buildKyselyFront, type KyselyFront } from './repo/kysely-front.js';
import {
  holdsUserTables,
  type MigrationReport,
  type MigrationsInput,
  runMigrations,
} from './repo/migrations.js';
import type { ReadPort } from './repo/query-backend.js';
import type { WalguardDialect } from './repo/walguard-dialect.js';
import type { RouterPool } from './repo/walguard-executor.js';
import type { ReadStats, WalguardStats } from './stats.js';
import { DeferredFailures } from './tx/deferred-failures.js';
import { InteractiveTransaction } from './tx/interactive-transaction.js';
import { UnitIntake } from './tx/unit-intake.js';
import {
  callWriteFunction,
  compileWritables,
  type Writable,
  type WriteResults,
} from './tx/writable.js';

export type { CheckLevel, CheckResult } from './durability/integrity.js';
export type { RecoveryInfo } from './durability/recovery.js';
export type { CheckpointEvent, CommitEvent, WalguardEvents } from './events.js';
export type { WalguardStats } from './stats.js';
export type { OutputOf, Writable, WriteResult, WriteResults } from './tx/writable.js';

export class Walguard<DB> extends TypedEvents<WalguardEvents> {
  /** The typed query builder: reads go to the reader, writes through the queue. */
  readonly kysely: Kysely<DB>;
  /** The Kysely dialect behind `kysely`, for apps that build their own `Kysely` (plugins). */
  readonly dialect: WalguardDialect;
  /** The resolved, frozen options. */
  readonly options: ResolvedOptions;
  /** What the last `migrate()` (or the open's `migrations` option) ran. */
  migrations: MigrationReport | undefined;
  /**
   * The plugin that stamps each query with its call-time place in submission order. `kysely`
   * does the same in its executor; add this plugin to a `Kysely` you build on `dialect` to
   * order that instance's writes by call time too (see `submission-order.ts`).
   */
  readonly orderingPlugin: SubmissionOrderPlugin;
  /** The routers `db.kysely` hands to transactions and `connection()` (internal; for tests). */
  readonly routers: RouterPool;

  readonly #logger: Logger;
  readonly #queue: WriteQueue;
  readonly #client: WriterPort;
  /** The reads: the main thread's reader and the reader threads, or PostgreSQL's pool. */
  readonly #reads: ReadPort & { close(): void | Promise<void>; stats(): ReadStats };
  /** Set once `close()` was called; new work fails with `CLOSED`. */
  #closing: Promise<void> | undefined;
  /** The ticket taken by `close()`: work called before it is still accepted and drained. */
  #closeTicket = Number.POSITIVE_INFINITY;
  /** The Kysely instances and dialects (see `repo/kysely-front.ts`). */
  readonly #front: KyselyFront<DB>;
  /** `check()` calls, failed ones, and the last result. */
  readonly #checks = new IntegrityRecord();
  /** What the open sequence opened: connections, verified settings, the lock, any recovery. */
  readonly #opened: OpenedEngine;
  readonly #checkpointer: Checkpointer;
  readonly #backups: BackupService;
  readonly #unregisterShutdown: () => void;
  /** Where deferred units' failures go: the event, and a rate-limited log. */
  readonly #deferredFailures: DeferredFailures;
  /** Turns write(), defer() and Kysely writes into units. */
  readonly #intake: UnitIntake;

  private constructor(options: ResolvedOptions, opened: OpenedEngine) {
    super();
    this.options = options;
    this.#opened = opened;
    this.#logger = options.logger;
    this.#client = opened.client;
    this.#reads = opened.reads;
    this.#queue = new WriteQueue(options, this.#client, (info) => this.#onBatch(info));
    this.#deferredFailures = new DeferredFailures(this.#logger, (e) => this.#report('deferred', e));
    const assertOpen = (ticket?: number) => this.#assertOpen(ticket);
    this.#intake = new UnitIntake(this.#queue, assertOpen, this.#deferredFailures);
    this.orderingPlugin = new SubmissionOrderPlugin(this.#queue.tickets);
    const front = buildKyselyFront<DB>(
      {
        reader: this.#reads,
        assertOpen: (ticket) => this.#assertOpen(ticket),
        ticketOf: (queryId) => this.orderingPlugin.ticketOf(queryId),
        submit: (statements, ticket) => this.#intake.submit(statements, true, ticket),
      },
      (ticket, timeoutMs) => {
        this.#assertOpen(ticket === 0 ? undefined : ticket);
        return InteractiveTransaction.begin(this.#queue, this.#client, ticket, timeoutMs);
      },
      (node, queryId) => this.orderingPlugin.stamp(node, queryId),
      options.migrationTimeoutMs,
      options.kyselyLog,
      opened.engine,
    );
    this.#front = front;
    this.kysely = front.kysely;
    this.dialect = front.dialect;
    this.routers = front.routers;
    this.#checkpointer = new Checkpointer(options.checkpoint, {
      path: options.path,
      run: (mode) => this.#queue.exclusive(() => this.#client.checkpoint!(mode)),
      walBytes: () => walBytes(this.options.path),
      emit: (event) => this.emit('checkpoint', event),
      logger: this.#logger.child({ component: 'checkpointer' }),
    });
    this.#backups = new BackupService({
      path: options.path,
      encryptionKey: opened.encryptionKey,
      backup: options.backup,
      logger: this.#logger.child({ component: 'backup' }),
      onBackup: ({ path, bytes, durationMs }) => this.emit('backup', { path, bytes, durationMs }),
      onError: (error) => this.#report('backup', error, 'a scheduled backup failed'),
    });
    // Always for beforeExit (an app that ends without close() still has its deferred units
    // committed); for signals only with handleSignals.
    this.#unregisterShutdown = registerForShutdown(
      this,
      options.shutdownTimeoutMs,
      this.#logger.child({ component: 'shutdown' }),
      options.handleSignals,
    );
  }

  /** Opens a database; see `openDatabase` and `durability/open-database.ts` for the steps. */
  static async open<DB>(input: WalguardOptions | OptionsWithConfig): Promise<Walguard<DB>> {
    const started = performance.now();
    const options = resolveOptions(applyConfigFile(input));
    const log = options.logger.child({ component: 'open' });
    const db = new Walguard<DB>(options, await openEngine(options));
    try {
      if (options.backup.onOpen) await db.backup();
      if (options.migrations !== undefined) await db.migrate(options.migrations);
    } catch (error) {
      await db.close();
      throw error;
    }
    log.info({ step: 'ready', path: options.path }, 'database ready');
    if (hasSubscribers('open')) {
      const durationMs = performance.now() - started;
      publish('open', { path: options.path, durationMs, encrypted: !!options.encryption });
    }
    return db;
  }

  /**
   * Runs the pending migrations of `input` (see `runMigrations`), each in its own transaction
   * through the writer. When any is pending on a database that already holds data, a backup
   * is taken first (unless `backup.beforeMigrations` is false). Resolves with what ran.
   */
  async migrate(input: MigrationsInput): Promise<MigrationReport> {
    this.#assertOpen();
    const backupFirst = this.options.backup.beforeMigrations;
    this.migrations = await runMigrations(this, input, {
      // A new database has nothing to lose; one that holds tables (its own, or an app's that
      // adopts migrations now) is backed up first.
      beforePending: backupFirst
        ? async (_pending, { firstRun }) => {
            if (!firstRun || holdsUserTables(fileEngine(this.#opened, 'backup()').reads.main))
              await this.backup();
          }
        : undefined,
    });
    return this.migrations;
  }

  /**
   * Runs the statements `fn` returns (a query builder, or an array of them) as one critical
   * unit — all or nothing — and resolves once they are durable, with one result per statement.
   * The builders must not be executed by `fn`; for statements that depend on each other's
   * results, use `transaction()`.
   */
  async write<const W extends Writable | readonly Writable[]>(
    fn: (db: Kysely<DB>) => W,
  ): Promise<WriteResults<W>> {
    const ticket = this.#queue.tickets.take();
    this.#assertOpen();
    const built = callWriteFunction('write', fn, this.kysely);
    const statements = compileWritables(built, this.kysely, 'write');
    const results = await this.#intake.submit(statements, true, ticket);
    return (Array.isArray(built) ? results : results[0]) as WriteResults<W>;
  }

  /**
   * Queues the statements `fn` returns as one deferred unit: applied within `deferredFlushMs`
   * without waiting for its own fsync, durable with the next critical commit or checkpoint,
   * always flushed by `close()`. Resolves as soon as the unit is queued (at once, unless the
   * queue is full: then when there is room — backpressure). Ignoring the promise is safe: it
   * never causes an unhandled rejection. Failures of the unit itself go to the logger, the
   * `error` event and `stats().deferredErrors`.
   */
  defer(fn: (db: Kysely<DB>) => Writable | readonly Writable[]): Promise<void> {
    return this.#intake.defer(fn, this.kysely);
  }

  /**
   * Runs `fn` as an interactive transaction (one unit): its statements run on the writer under
   * a savepoint, its reads see its own writes; it commits when `fn` resolves and rolls back
   * alone when `fn` throws. Resolves with `fn`'s result once the transaction is durable.
   */
  transaction<T>(fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    // The ticket is taken now, at call time: see `repo/kysely-front.ts`.
    return this.#front.transaction(this.#queue.tickets.take(), fn);
  }

  /** @internal The dialect `runMigrations` builds on (transactions bounded by `migrationTimeoutMs`). */
  migrationDialect(): WalguardDialect {
    return this.#front.migrationDialect;
  }

  /** Runs a WAL checkpoint between batches (default `PASSIVE`). */
  async checkpoint(mode: CheckpointMode = 'PASSIVE'): Promise<CheckpointEvent> {
    this.#assertOpen();
    fileEngine(this.#opened, 'checkpoint()');
    return this.#checkpointer.run(mode, 'manual');
  }

  /** Runs `quick_check` (default) or `integrity_check` on a reader thread. */
  async check(level: CheckLevel = 'quick'): Promise<CheckResult> {
    this.#assertOpen();
    const { reads } = fileEngine(this.#opened, 'check()');
    return this.#checks.add(await runIntegrityCheck(reads, level, this.options.path, 'check'));
  }

  /**
   * Writes a verified, consistent online copy of the database to the backup folder as
   * `<database file name>.<UTC timestamp>.db` (encrypted with the same key; the key file and a
   * manifest naming the database are written beside it) and prunes this database's old
   * backups by the retention policy. Writers keep writing meanwhile.
   * Backups run one at a time: a call during a running backup waits for it and then takes
   * its own.
   */
  async backup(): Promise<BackupResult> {
    this.#assertOpen();
    fileEngine(this.#opened, 'backup()');
    return this.#backups.run();
  }

  /** A snapshot of the counters. */
  stats(): WalguardStats {
    return {
      ...this.#queue.stats.snapshot(),
      pending: this.#queue.pending,
      deferredPending: this.#queue.deferredPending,
      pendingBytes: this.#queue.pendingBytes,
      walBytes: walBytes(this.options.path),
      checkpoints: this.#checkpointer.count,
      checkpointsBlocked: this.#checkpointer.blocked,
      lastCheckpoint: this.#checkpointer.last,
      backups: this.#backups.count,
      lastBackup: this.#backups.last,
      recovery: this.#opened.recovery,
      integrityChecks: this.#checks.checks,
      integrityFailures: this.#checks.failures,
      lastCheck: this.#checks.last,
      reads: this.#reads.stats(),
      fullfsync: this.#opened.engine === 'sqlite' && this.#opened.settings.writer.fullfsync === 1,
      settings: this.#opened.settings,
    };
  }

  /** Reads a PRAGMA on the writer connection, between batches (for diagnostics and tests). */
  async writerPragma(name: string): Promise<unknown> {
    this.#assertOpen();
    const { client } = fileEngine(this.#opened, 'writerPragma()');
    const row = await this.#queue.exclusive(() => client.pragma(name));
    return row?.[0];
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Stops intake (new work fails with `CLOSED`), drains every queued unit (critical and
   * deferred), runs `wal_checkpoint(TRUNCATE)`, and closes both connections and the worker.
   * Safe to call more than once: every call returns the same promise.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) this.#closeTicket = this.#queue.tickets.take();
    this.#closing ??= closeSequence({
      path: this.options.path,
      logger: this.#logger,
      checkpointer: this.#opened.engine === 'sqlite' ? this.#checkpointer : undefined,
      backups: this.#backups,
      queue: this.#queue,
      reads: this.#reads,
      client: this.#client,
      lock: this.#opened.lock,
      unregister: this.#unregisterShutdown,
    }).finally(() => this.#deferredFailures.flush());
    return this.#closing;
  }

  #assertOpen(ticket?: number): void {
    if (this.#closing !== undefined && !(ticket !== undefined && ticket < this.#closeTicket)) {
      throw new WalguardError('CLOSED', 'The database is closed; nothing was queued');
    }
  }

  /** Reports a failure no caller awaits: the channel, the `error` event, and the logger (given `msg`). */
  #report(source: 'deferred' | 'backup' | 'batch', error: Error, msg?: string): void {
    const code = (error as { code?: string }).code;
    if (hasSubscribers('error')) {
      const { path } = this.options;
      publish('error', { path, source, code: code ?? 'ERROR', message: error.message });
    }
    if (msg !== undefined) this.#logger.error({ err: error, code }, msg);
    if (source !== 'batch') this.emit('error', error);
  }

  #onBatch(info: BatchInfo): void {
    if (hasSubscribers('commit')) {
      const { units, critical, succeeded, durable, commitMs } = info;
      const errorCode = (info.error as { code?: string } | undefined)?.code;
      const path = this.options.path;
      publish('commit', { path, units, critical, succeeded, durable, commitMs, errorCode });
    }
    // PostgreSQL has no WAL file of ours: no size to watch, nothing to checkpoint (a stat of
    // a file that is not there, and its exception, cost a lone write ~40 µs there).
    if (this.#opened.engine === 'sqlite') this.#checkpointer.afterBatch();
    if (info.error !== undefined) {
      this.#report('batch', info.error, 'a write batch failed; every unit of it was rejected');
    }
    this.emit('commit', info);
  }
}

/**
 * Opens (creating if needed) a walguard database at `options.path`: one writer connection in
 * a worker thread, reader connections on the main thread and in reader threads, each with
 * every setting applied and read back.
 */
export function openDatabase<DB>(
  options: WalguardOptions | OptionsWithConfig,
): Promise<Walguard<DB>> {
  return Walguard.open<DB>(options);
}
