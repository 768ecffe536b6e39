/**
 * `Walguard<DB>`: an open database. It owns the writer worker, the reader connection, the
 * write queue and the Kysely instance, and gives the app its public surface.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { CompiledQuery, Kysely, RootOperationNode, Transaction } from 'kysely';
import type { Logger } from 'pino';
import { applyConfigFile, type OptionsWithConfig } from './config/apply-config-file.js';
import {
  type BackupResult,
  backupNameFor,
  newestGoodBackup,
  restoreBackup,
  takeBackup,
} from './durability/backups.js';
import { Checkpointer } from './durability/checkpointer.js';
import { connectionSettingsOf, type SettingsReadBack } from './durability/connection-settings.js';
import { inspectDatabaseFile } from './durability/file-inspect.js';
import {
  checkFileAgainstOptions,
  explainOpenError,
  resolveKey,
} from './durability/open-sequence.js';
import { acquireProcessLock, type ProcessLock } from './durability/process-lock.js';
import { registerForShutdown } from './durability/shutdown.js';
import { isWalguardError, toUnitError, WalguardError } from './errors.js';
import { hasSubscribers, publish } from './metrics/channels.js';
import { type ResolvedOptions, resolveOptions, type WalguardOptions } from './options.js';
import type {
  CheckpointMode,
  CheckpointResult,
  StatementResult,
  WireStatement,
} from './queue/protocol.js';
import { BATCH_SIZE_BUCKETS, type LatencySummary } from './queue/queue-stats.js';
import { SubmissionOrderPlugin } from './queue/submission-order.js';
import { type BatchInfo, WriteQueue } from './queue/write-queue.js';
import { WriterClient } from './queue/writer-client.js';
import { type MigrationReport, type MigrationsInput, runMigrations } from './repo/migrations.js';
import type { QueryBackend } from './repo/query-backend.js';
import { Reader } from './repo/reader.js';
import { WalguardDialect } from './repo/walguard-dialect.js';
import { type RouterPool, walguardKysely } from './repo/walguard-executor.js';
import { openSqlite } from './sqlite-types.js';
import { InteractiveTransaction } from './tx/interactive-transaction.js';
import { statementBytes, type Unit } from './tx/unit.js';

/** Something `write()` and `defer()` accept: a Kysely query builder, `sql` template, or compiled query. */
export type Writable<O = unknown> =
  | { compile(): CompiledQuery<O> }
  | { compile(executorProvider: never): CompiledQuery<O> }
  | CompiledQuery<O>;

/** The row type of a `Writable`. */
export type OutputOf<W> =
  W extends CompiledQuery<infer O>
    ? O
    : W extends { compile(...args: never[]): CompiledQuery<infer O> }
      ? O
      : unknown;

/** The result of one statement of a `write()`. */
export interface WriteResult<O> {
  /** Rows, for statements that return rows (`… RETURNING`, selects). */
  rows: O[];
  /** Rows changed, for statements that return no rows. */
  numAffectedRows?: bigint;
  /** Last inserted rowid, for statements that return no rows. */
  insertId?: bigint;
}

/** `write()`'s result: one `WriteResult` per statement, shaped like what the function returned. */
export type WriteResults<W> = W extends readonly unknown[]
  ? { -readonly [K in keyof W]: WriteResult<OutputOf<W[K]>> }
  : WriteResult<OutputOf<W>>;

/** Payload of the `commit` event. */
export type CommitEvent = BatchInfo;

/** Payload of the `checkpoint` event. */
export type CheckpointEvent = CheckpointResult & {
  /** Why it ran: on demand, on close, … */
  reason: 'manual' | 'close' | 'idle' | 'wal-size';
};

/** The events of `Walguard`. */
export interface WalguardEvents {
  /** A deferred unit failed, or a batch failed as a whole. Never thrown when no one listens. */
  error: [error: Error];
  /** A batch committed (or failed: `error` is set). */
  commit: [event: CommitEvent];
  /** A checkpoint ran. */
  checkpoint: [event: CheckpointEvent];
  /** A backup was written. */
  backup: [event: { path: string; bytes: number; durationMs: number }];
}

/** A snapshot of the database's counters. */
export interface WalguardStats {
  /** Write transactions committed. */
  commits: number;
  /** Of those, deferred-only commits made without their own fsync. */
  relaxedCommits: number;
  /** Write units acknowledged. */
  units: number;
  /** Write units rejected (their own SQL error, or their batch failed). */
  failedUnits: number;
  /** Batches that failed as a whole. */
  failedBatches: number;
  /** Units queued, waiting for room, or in the batch in flight now. */
  pending: number;
  /** Deferred units not yet applied. */
  deferredPending: number;
  /** Deferred units applied. */
  deferredUnits: number;
  /** Deferred units that failed. */
  deferredErrors: number;
  /** Callers turned away with `QUEUE_FULL`. */
  queueFull: number;
  /** Bytes of SQL and parameters waiting in the queue. */
  pendingBytes: number;
  /** Size of the `-wal` file now, in bytes. */
  walBytes: number;
  /** Largest batch so far, in units. */
  maxBatchUnits: number;
  /** BEGIN-to-COMMIT time per batch, in ms. */
  commitLatencyMs: LatencySummary;
  /** Submission-to-acknowledgement time per critical unit, in ms. */
  ackLatencyMs: LatencySummary;
  /** Units per batch. */
  batchSize: LatencySummary;
  /** Checkpoints run by walguard. */
  checkpoints: number;
  /** Checkpoints that could not finish because a reader held an old snapshot. */
  checkpointsBlocked: number;
  /** The last checkpoint walguard ran. */
  lastCheckpoint: CheckpointEvent | undefined;
  /** Backups written since open. */
  backups: number;
  /** The last backup written since open. */
  lastBackup: BackupResult | undefined;
  /** Set when this open found the database damaged and restored a backup (`onCorruption: 'restore'`). */
  recovery: RecoveryInfo | undefined;
  /** Batches committed since open, by size in units (`<=1`, `<=2`, … `<=1024`, `>1024`). */
  batchSizeHistogram: Record<string, number>;
  /** `check()` calls since open. */
  integrityChecks: number;
  /** Of those, checks that found damage. */
  integrityFailures: number;
  /** The last `check()` result. */
  lastCheck: CheckResult | undefined;
  /** Whether `fullfsync`/`checkpoint_fullfsync` are on (macOS only). */
  fullfsync: boolean;
  /** The settings as read back from each connection at open. */
  settings: { writer: SettingsReadBack; reader: SettingsReadBack };
}

/** What an open that restored a backup did. */
export interface RecoveryInfo {
  /** Why: the damage found. */
  reason: string;
  /** The backup put in place. */
  restoredFrom: string;
  /** When that backup was taken (ISO 8601): later writes are not in the live database. */
  backupTakenAt: string;
  /** Where the damaged files were moved. */
  quarantineDir: string | undefined;
}

/** Integrity check levels: `quick` runs `quick_check`, `full` runs `integrity_check`. */
export type CheckLevel = 'quick' | 'full';

/** The result of `check()`. */
export interface CheckResult {
  /** True when the check reported `ok`. */
  ok: boolean;
  /** The level run. */
  level: CheckLevel;
  /** The check's messages (`['ok']` when healthy; at most 100). */
  messages: string[];
  /** How long it took, in ms. */
  durationMs: number;
}

type Listener<A extends unknown[]> = (...args: A) => void;

export class Walguard<DB> {
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

  readonly #events = new EventEmitter();
  readonly #logger: Logger;
  readonly #queue: WriteQueue;
  readonly #client: WriterClient;
  readonly #reader: Reader;
  readonly #settings: { writer: SettingsReadBack; reader: SettingsReadBack };
  /** Set once `close()` was called; new work fails with `CLOSED`. */
  #closing: Promise<void> | undefined;
  /**
   * Call-time tickets of `db.transaction()` calls whose transaction has not reached the
   * driver yet, oldest first (see `transaction()`).
   */
  readonly #txClaims: { ticket: number; used: boolean }[] = [];
  /** The Kysely instance `db.transaction()` runs on: its driver takes the claims above. */
  readonly #txKysely: Kysely<DB>;
  /** The dialect migrations run on: its transactions are bounded by `migrationTimeoutMs`. */
  readonly #migrationDialect: WalguardDialect;
  /** The ticket taken by `close()`: work called before it is still accepted and drained. */
  #closeTicket = Number.POSITIVE_INFINITY;
  #checkpoints = 0;
  /** Checkpoints a reader kept from finishing. */
  #checkpointsBlocked = 0;
  /** Set when this open replaced a damaged database with a backup. */
  #recovery: RecoveryInfo | undefined;
  /** `check()` calls, failed ones, and the last result. */
  #integrityChecks = 0;
  #integrityFailures = 0;
  #lastCheck: CheckResult | undefined;
  #lastCheckpoint: CheckpointEvent | undefined;
  /** This process's ownership of the database; released by close(). */
  readonly #lock: ProcessLock;
  /** The key in force (never logged), for backups. */
  readonly #encryptionKey: string | undefined;
  readonly #checkpointer: Checkpointer;
  #unregisterShutdown: (() => void) | undefined;
  #backupTimer: NodeJS.Timeout | undefined;
  #backups = 0;
  #lastBackup: BackupResult | undefined;
  /** The backup in progress, if any: backups run one at a time. */
  #backupRunning: Promise<BackupResult> | undefined;

  private constructor(
    options: ResolvedOptions,
    client: WriterClient,
    reader: Reader,
    settings: { writer: SettingsReadBack; reader: SettingsReadBack },
    lock: ProcessLock,
    encryptionKey: string | undefined,
  ) {
    this.options = options;
    this.#lock = lock;
    this.#encryptionKey = encryptionKey;
    this.#logger = options.logger;
    this.#client = client;
    this.#reader = reader;
    this.#settings = settings;
    this.#queue = new WriteQueue(options, client, (info) => this.#onBatch(info));
    this.orderingPlugin = new SubmissionOrderPlugin(this.#queue.tickets);
    const begin = (ticket: number, timeoutMs?: number) => {
      this.#assertOpen(ticket === 0 ? undefined : ticket);
      return InteractiveTransaction.begin(this.#queue, this.#client, ticket, timeoutMs);
    };
    const backend: QueryBackend = {
      reader,
      assertOpen: (ticket) => this.#assertOpen(ticket),
      ticketOf: (queryId) => this.orderingPlugin.ticketOf(queryId),
      submit: (statements, ticket) => this.#submit(statements, true, ticket),
      // A transaction begun on db.kysely directly takes its place on arrival.
      beginTransaction: () => begin(0),
    };
    // One begun by db.transaction() takes the ticket of that call: Kysely's path from
    // .execute() to the driver is the same for every transaction, so they arrive in call
    // order, and the oldest unused claim is this one's.
    const claimingBackend: QueryBackend = {
      ...backend,
      beginTransaction: () => {
        const claim = this.#txClaims.shift();
        if (claim === undefined) return begin(0);
        claim.used = true;
        return begin(claim.ticket);
      },
    };
    const stamp = (node: RootOperationNode, queryId: object) =>
      this.orderingPlugin.stamp(node, queryId);
    this.#txKysely = walguardKysely<DB>(
      new WalguardDialect(claimingBackend),
      claimingBackend,
      stamp,
    ).kysely;
    this.dialect = new WalguardDialect(backend);
    this.#migrationDialect = new WalguardDialect({
      ...backend,
      beginTransaction: () => begin(0, options.migrationTimeoutMs),
    });
    const front = walguardKysely<DB>(this.dialect, backend, stamp);
    this.kysely = front.kysely;
    this.routers = front.pool;
    this.#checkpointer = new Checkpointer(
      options.checkpoint,
      (mode, reason) => this.#checkpoint(mode, reason),
      () => this.#walBytes(),
      this.#logger.child({ component: 'checkpointer' }),
    );
    // Always for beforeExit (an app that ends without close() still has its deferred units
    // committed); for signals only with handleSignals.
    this.#unregisterShutdown = registerForShutdown(
      this,
      options.shutdownTimeoutMs,
      this.#logger.child({ component: 'shutdown' }),
      options.handleSignals,
    );
    if (options.backup.intervalMs > 0) {
      this.#backupTimer = setInterval(() => {
        this.backup().catch((error: Error) =>
          this.#reportError(error, 'a scheduled backup failed'),
        );
      }, options.backup.intervalMs);
      this.#backupTimer.unref();
    }
  }

  /** Opens a database; see `openDatabase` and `open-sequence.ts` for the steps. */
  static async open<DB>(input: WalguardOptions | OptionsWithConfig): Promise<Walguard<DB>> {
    const started = performance.now();
    const options = resolveOptions(applyConfigFile(input));
    const log = options.logger;
    fs.mkdirSync(path.dirname(options.path), { recursive: true });
    const lock = await acquireProcessLock(options.path, { waitMs: options.lockWaitMs });
    log.info({ step: 'lock', path: options.path }, 'process lock acquired');
    let db: Walguard<DB>;
    try {
      db = await Walguard.#openLocked<DB>(options, lock, true);
    } catch (error) {
      await lock.release();
      throw error;
    }
    if (options.migrations !== undefined) {
      try {
        await db.migrate(options.migrations);
      } catch (error) {
        await db.close();
        throw error;
      }
    }
    log.info({ step: 'ready', path: options.path }, 'database ready');
    if (hasSubscribers('open')) {
      publish('open', {
        path: options.path,
        durationMs: performance.now() - started,
        encrypted: options.encryption !== undefined,
      });
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
    const report = await runMigrations(this, input, {
      beforePending: this.options.backup.beforeMigrations
        ? async (pending, { firstRun }) => {
            // A new database has nothing to lose; one that holds tables (its own, or an app's
            // that adopts migrations now) is backed up first.
            if (firstRun && !this.#holdsUserTables()) return;
            this.#logger.info(
              { step: 'migrations', pending },
              'backing up before pending migrations',
            );
            await this.backup();
          }
        : undefined,
    });
    this.migrations = report;
    if (report.ran.length > 0) {
      this.#logger.info({ step: 'migrations', ran: report.ran.length }, 'migrations applied');
    }
    return report;
  }

  /** The open sequence after the lock; on `CORRUPT` with `onCorruption: 'restore'`, restores and retries once. */
  static async #openLocked<DB>(
    options: ResolvedOptions,
    lock: ProcessLock,
    mayRestore: boolean,
  ): Promise<Walguard<DB>> {
    try {
      return await Walguard.#openConnections<DB>(options, lock);
    } catch (error) {
      if (isWalguardError(error, 'CORRUPT') && hasSubscribers('corruption')) {
        const source = error.details?.messages
          ? 'integrity'
          : error.details?.kind
            ? 'header'
            : 'engine';
        publish('corruption', { path: options.path, source, message: error.message });
      }
      if (!mayRestore || options.onCorruption !== 'restore' || !isWalguardError(error, 'CORRUPT')) {
        throw error;
      }
      if (String(error.details?.path ?? '').endsWith('.keyinfo')) throw error;
      const recovery = await Walguard.#restoreNewestBackup(options, error);
      const db = await Walguard.#openLocked<DB>(options, lock, false);
      db.#recovery = recovery;
      return db;
    }
  }

  static async #openConnections<DB>(
    options: ResolvedOptions,
    lock: ProcessLock,
  ): Promise<Walguard<DB>> {
    const log = options.logger.child({ component: 'open' });
    const file = await inspectDatabaseFile(options.path);
    log.info({ step: 'inspect', kind: file.kind, bytes: file.size }, 'database file inspected');
    checkFileAgainstOptions(file, options);
    const resolved = await resolveKey(file, options);
    log.info({ step: 'key', encrypted: resolved.key !== undefined }, 'key resolved');
    const settings = connectionSettingsOf(options);
    const encryptionKey = resolved.key;
    let client: WriterClient;
    let writer: SettingsReadBack;
    try {
      ({ client, settings: writer } = await WriterClient.start(
        {
          path: options.path,
          encryptionKey,
          settings,
          transactionTimeoutMs: options.transactionTimeoutMs,
        },
        options.logger.child({ component: 'writer' }),
      ));
    } catch (error) {
      throw explainOpenError(error, resolved, options);
    }
    log.info({ step: 'writer', settings: writer }, 'writer connection open, settings verified');
    let reader: Reader | undefined;
    try {
      const db = await openSqlite(
        options.path,
        encryptionKey === undefined ? {} : { encryptionKey },
      );
      reader = new Reader(db, settings);
      log.info(
        { step: 'reader', settings: reader.settings },
        'reader connection open, settings verified',
      );
      if (options.integrityCheck !== 'off') {
        const level = options.integrityCheck;
        const checkStarted = performance.now();
        const messages = runCheck(reader, level);
        if (hasSubscribers('integrity')) {
          const ok = messages.join() === 'ok';
          publish('integrity', {
            path: options.path,
            level,
            ok,
            durationMs: performance.now() - checkStarted,
            trigger: 'open',
            messages: ok ? undefined : messages.slice(0, 5),
          });
        }
        log.info({ step: 'integrity', level, ok: messages.join() === 'ok' }, 'integrity checked');
        if (messages.join() !== 'ok') {
          throw new WalguardError(
            'CORRUPT',
            `${options.path} failed its ${level === 'full' ? 'integrity_check' : 'quick_check'}: ${messages.slice(0, 5).join('; ')}. The file was not changed; restore a backup (or open with onCorruption: 'restore')`,
            { details: { path: options.path, messages: messages.slice(0, 20) } },
          );
        }
      }
    } catch (error) {
      try {
        reader?.close();
      } catch {
        // Closing a reader on a damaged file is best effort; the error below is what matters.
      }
      await client.close();
      throw explainOpenError(error, resolved, options);
    }
    const db = new Walguard<DB>(
      options,
      client,
      reader,
      { writer, reader: reader.settings },
      lock,
      encryptionKey,
    );
    if (options.backup.onOpen) await db.backup();
    return db;
  }

  /** Quarantines the damaged database and puts the newest good backup in its place. */
  static async #restoreNewestBackup(
    options: ResolvedOptions,
    damage: WalguardError,
  ): Promise<RecoveryInfo> {
    const log = options.logger.child({ component: 'restore' });
    const name = backupNameFor(options.path);
    const source = options.encryption;
    const backup = await newestGoodBackup(options.backup.dir, name, source);
    if (backup === undefined) {
      throw new WalguardError(
        'CORRUPT',
        `${damage.message} — and no backup in ${options.backup.dir} passes its check, so nothing was moved or restored`,
        { cause: damage, details: damage.details },
      );
    }
    const result = await restoreBackup(options.path, backup.path, {
      source,
      lockHeld: true,
      reason: damage.message,
    });
    log.warn(
      {
        step: 'restore',
        restoredFrom: result.restoredFrom,
        backupTakenAt: backup.takenAt.toISOString(),
        quarantineDir: result.quarantineDir,
      },
      `the database was damaged and has been replaced by the backup taken at ${backup.takenAt.toISOString()}: writes made after that time are lost from the live database (the damaged files are kept in ${result.quarantineDir})`,
    );
    if (hasSubscribers('recovery')) {
      publish('recovery', {
        path: options.path,
        restoredFrom: result.restoredFrom,
        backupTakenAt: backup.takenAt.toISOString(),
        quarantineDir: result.quarantineDir,
      });
    }
    return {
      reason: damage.message,
      restoredFrom: result.restoredFrom,
      backupTakenAt: backup.takenAt.toISOString(),
      quarantineDir: result.quarantineDir,
    };
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
    const built = fn(this.kysely);
    const list = Array.isArray(built) ? (built as readonly Writable[]) : [built as Writable];
    const results = await this.#submit(
      list.map((w) => this.#compile(w)),
      true,
      ticket,
    );
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
    let statements: WireStatement[];
    const ticket = this.#queue.tickets.take();
    try {
      this.#assertOpen();
      const built = fn(this.kysely);
      const list = Array.isArray(built) ? (built as readonly Writable[]) : [built as Writable];
      statements = list.map((w) => this.#compile(w));
    } catch (error) {
      return this.#deferredFailure(error as Error);
    }
    const unit = this.#unit(
      statements,
      false,
      ticket,
      () => {},
      (error) => this.#reportDeferred(error),
    );
    const admitted = this.#queue.add(unit);
    if (admitted === undefined) return Promise.resolve();
    const queued = admitted.catch((error: Error) => this.#deferredFailure(error));
    // A caller that ignores the promise must never see an unhandled rejection.
    queued.catch(() => {});
    return queued;
  }

  /**
   * Runs `fn` as an interactive transaction (one unit): its statements run on the writer under
   * a savepoint, its reads see its own writes; it commits when `fn` resolves and rolls back
   * alone when `fn` throws. Resolves with `fn`'s result once the transaction is durable.
   */
  transaction<T>(fn: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
    // Kysely reaches the driver's beginTransaction a few microtasks after this call; the
    // ticket taken now waits there as a claim (see the constructor), so the transaction
    // keeps its place in submission order among write() and defer() calls made in the same
    // tick. No AsyncLocalStorage: on Node 20, running one turns on promise hooks for the
    // whole process, and measured here every later write was 10-35% slower.
    const claim = { ticket: this.#queue.tickets.take(), used: false };
    this.#txClaims.push(claim);
    return this.#txKysely
      .transaction()
      .execute(fn)
      .finally(() => {
        // Failed before reaching the driver (closed): withdraw the claim.
        if (!claim.used) this.#txClaims.splice(this.#txClaims.indexOf(claim), 1);
      });
  }

  /** @internal The dialect `runMigrations` builds on (transactions bounded by `migrationTimeoutMs`). */
  migrationDialect(): WalguardDialect {
    return this.#migrationDialect;
  }

  /** Runs a WAL checkpoint between batches (default `PASSIVE`). */
  async checkpoint(mode: CheckpointMode = 'PASSIVE'): Promise<CheckpointEvent> {
    this.#assertOpen();
    return this.#checkpoint(mode, 'manual');
  }

  /** Runs `quick_check` (default) or `integrity_check` on the reader connection. */
  async check(level: CheckLevel = 'quick'): Promise<CheckResult> {
    this.#assertOpen();
    const started = performance.now();
    const messages = runCheck(this.#reader, level);
    const result: CheckResult = {
      ok: messages.length === 1 && messages[0] === 'ok',
      level,
      messages,
      durationMs: performance.now() - started,
    };
    this.#integrityChecks++;
    if (!result.ok) this.#integrityFailures++;
    this.#lastCheck = result;
    const path = this.options.path;
    if (hasSubscribers('integrity')) {
      publish('integrity', {
        path,
        level,
        ok: result.ok,
        durationMs: result.durationMs,
        trigger: 'check',
        messages: result.ok ? undefined : messages.slice(0, 5),
      });
    }
    if (!result.ok && hasSubscribers('corruption')) {
      publish('corruption', {
        path,
        source: 'integrity',
        message: messages.slice(0, 5).join('; '),
      });
    }
    return result;
  }

  /**
   * Writes a verified, consistent online copy of the database to the backup folder as
   * `<name>.<UTC timestamp>.db` (encrypted with the same key; the key file is copied beside
   * it) and prunes old backups by the retention policy. Writers keep writing meanwhile.
   * Backups run one at a time: a call during a running backup waits for it and then takes
   * its own.
   */
  async backup(): Promise<BackupResult> {
    this.#assertOpen();
    const previous = this.#backupRunning;
    const run = (async () => {
      await previous?.catch(() => {});
      const result = await takeBackup(this.options.path, this.#encryptionKey, {
        dir: this.options.backup.dir,
        name: backupNameFor(this.options.path),
        keepLast: this.options.backup.keepLast,
        keepDailyDays: this.options.backup.keepDailyDays,
      });
      this.#backups++;
      this.#lastBackup = result;
      this.#logger.info(
        {
          path: result.path,
          bytes: result.bytes,
          durationMs: result.durationMs,
          pruned: result.pruned.length,
        },
        'backup written and verified',
      );
      if (this.#events.listenerCount('backup') > 0) {
        if (hasSubscribers('backup')) {
          publish('backup', {
            path: this.options.path,
            backupPath: result.path,
            bytes: result.bytes,
            durationMs: result.durationMs,
            pruned: result.pruned.length,
          });
        }
        this.#events.emit('backup', {
          path: result.path,
          bytes: result.bytes,
          durationMs: result.durationMs,
        });
      }
      return result;
    })();
    this.#backupRunning = run;
    return run;
  }

  /** True when the database has a table other than migration bookkeeping. */
  #holdsUserTables(): boolean {
    const rows = this.#reader.rawRows(
      "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'kysely_migration%' AND name NOT LIKE 'walguard_migration%'",
    );
    return Number(rows[0]?.[0] ?? 0) > 0;
  }

  /** A snapshot of the counters. */
  stats(): WalguardStats {
    const s = this.#queue.stats;
    const walBytes = this.#walBytes();
    return {
      commits: s.commits,
      relaxedCommits: s.relaxedCommits,
      units: s.units,
      failedUnits: s.failedUnits,
      failedBatches: s.failedBatches,
      pending: this.#queue.pending,
      deferredPending: this.#queue.deferredPending,
      deferredUnits: s.deferredUnits,
      deferredErrors: s.deferredErrors,
      queueFull: s.queueFull,
      pendingBytes: this.#queue.pendingBytes,
      walBytes,
      maxBatchUnits: s.maxBatchUnits,
      commitLatencyMs: s.commitLatency.summary(),
      ackLatencyMs: s.ackLatency.summary(),
      batchSize: s.batchSizes.summary(),
      checkpoints: this.#checkpoints,
      checkpointsBlocked: this.#checkpointsBlocked,
      lastCheckpoint: this.#lastCheckpoint,
      backups: this.#backups,
      lastBackup: this.#lastBackup,
      recovery: this.#recovery,
      batchSizeHistogram: Object.fromEntries(
        s.batchSizeHistogram.map((count, i) => [
          i < BATCH_SIZE_BUCKETS.length
            ? `<=${BATCH_SIZE_BUCKETS[i]}`
            : `>${BATCH_SIZE_BUCKETS.at(-1)}`,
          count,
        ]),
      ),
      integrityChecks: this.#integrityChecks,
      integrityFailures: this.#integrityFailures,
      lastCheck: this.#lastCheck,
      fullfsync: this.#settings.writer.fullfsync === 1,
      settings: this.#settings,
    };
  }

  /** Size of the `-wal` file, in bytes (0 when there is none). `stat` opens no descriptor. */
  #walBytes(): number {
    try {
      return fs.statSync(`${this.options.path}-wal`).size;
    } catch {
      // No WAL file (after a TRUNCATE on close, or before the first write): zero bytes.
      return 0;
    }
  }

  /** Reads a PRAGMA on the writer connection, between batches (for diagnostics and tests). */
  async writerPragma(name: string): Promise<unknown> {
    this.#assertOpen();
    const row = await this.#queue.exclusive(() => this.#client.pragma(name));
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
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const log = this.#logger;
    const closeStarted = performance.now();
    this.#checkpointer.stop();
    clearInterval(this.#backupTimer);
    await this.#backupRunning?.catch(() => {});
    // Let Kysely calls made before close() finish their async hops into the queue.
    await new Promise<void>((resolve) => setImmediate(resolve));
    log.info({ pending: this.#queue.pending }, 'closing: draining the write queue');
    await this.#queue.drain();
    try {
      this.#reader.close();
    } catch (error) {
      log.warn({ err: error }, 'closing the reader failed');
    }
    try {
      const result = await this.#checkpoint('TRUNCATE', 'close');
      if (result.busy) log.warn(result, 'the closing checkpoint could not finish');
    } catch (error) {
      log.error(
        { err: error },
        'the closing checkpoint failed; the WAL stays and is replayed on next open',
      );
    }
    await this.#client.close();
    await this.#lock.release();
    this.#unregisterShutdown?.();
    log.info('closed');
    if (hasSubscribers('close')) {
      publish('close', { path: this.options.path, durationMs: performance.now() - closeStarted });
    }
  }

  on<E extends keyof WalguardEvents>(event: E, listener: Listener<WalguardEvents[E]>): this {
    this.#events.on(event, listener as Listener<unknown[]>);
    return this;
  }

  once<E extends keyof WalguardEvents>(event: E, listener: Listener<WalguardEvents[E]>): this {
    this.#events.once(event, listener as Listener<unknown[]>);
    return this;
  }

  off<E extends keyof WalguardEvents>(event: E, listener: Listener<WalguardEvents[E]>): this {
    this.#events.off(event, listener as Listener<unknown[]>);
    return this;
  }

  async #checkpoint(
    mode: CheckpointMode,
    reason: CheckpointEvent['reason'],
  ): Promise<CheckpointEvent> {
    const result = await this.#queue.exclusive(() => this.#client.checkpoint(mode));
    const event: CheckpointEvent = { ...result, reason };
    this.#checkpoints++;
    this.#lastCheckpoint = event;
    if (event.busy) {
      this.#checkpointsBlocked++;
      this.#logger.warn(
        { ...event, walBytes: this.#walBytes(), blocked: this.#checkpointsBlocked },
        'a checkpoint could not finish: a reader holds an old snapshot (an unfinished stream or a long read?)',
      );
    } else {
      this.#logger.debug(event, 'checkpoint');
    }
    this.#events.emit('checkpoint', event);
    if (hasSubscribers('checkpoint')) {
      publish('checkpoint', { path: this.options.path, ...result, reason });
    }
    return event;
  }

  #assertOpen(ticket?: number): void {
    if (this.#closing !== undefined && !(ticket !== undefined && ticket < this.#closeTicket)) {
      throw new WalguardError('CLOSED', 'The database is closed; nothing was queued');
    }
  }

  #compile(w: Writable): WireStatement {
    const compiled: CompiledQuery =
      'compile' in w ? (w.compile as (p: unknown) => CompiledQuery)(this.kysely) : w;
    return { sql: compiled.sql, params: compiled.parameters };
  }

  #unit(
    statements: WireStatement[],
    critical: boolean,
    ticket: number | undefined,
    resolve: (results: StatementResult[]) => void,
    reject: (error: Error) => void,
  ): Unit {
    let bytes = 0;
    for (const s of statements) bytes += statementBytes(s);
    return {
      wire: { kind: 'statements', statements },
      critical,
      bytes,
      ticket: ticket ?? 0,
      submittedAt: performance.now(),
      resolve,
      reject,
    };
  }

  async #submit(
    statements: WireStatement[],
    critical: boolean,
    ticket: number | undefined,
  ): Promise<StatementResult[]> {
    this.#assertOpen(ticket);
    let unit!: Unit;
    const done = new Promise<StatementResult[]>((resolve, reject) => {
      unit = this.#unit(statements, critical, ticket, resolve, reject);
    });
    const admitted = this.#queue.add(unit);
    if (admitted !== undefined) await admitted;
    return done;
  }

  /** A deferred unit that could not be queued: reported, and the returned promise rejects (handled). */
  #deferredFailure(error: Error): Promise<void> {
    const unitError = error instanceof WalguardError ? error : toUnitError(error);
    this.#reportDeferred(unitError);
    const p = Promise.reject(unitError);
    p.catch(() => {});
    return p;
  }

  #reportDeferred(error: Error): void {
    this.#publishError('deferred', error);
    this.#logger.error(
      { err: error, code: (error as { code?: string }).code },
      'a deferred write failed',
    );
    if (this.#events.listenerCount('error') > 0) this.#events.emit('error', error);
  }

  #publishError(source: string, error: Error): void {
    if (!hasSubscribers('error')) return;
    const code = (error as { code?: string }).code ?? 'ERROR';
    publish('error', { path: this.options.path, source, code, message: error.message });
  }

  #reportError(error: Error, msg: string): void {
    this.#publishError('backup', error);
    this.#logger.error({ err: error, code: (error as { code?: string }).code }, msg);
    if (this.#events.listenerCount('error') > 0) this.#events.emit('error', error);
  }

  #onBatch(info: BatchInfo): void {
    if (hasSubscribers('commit')) {
      publish('commit', {
        path: this.options.path,
        units: info.units,
        critical: info.critical,
        succeeded: info.succeeded,
        durable: info.durable,
        commitMs: info.commitMs,
        errorCode: (info.error as { code?: string } | undefined)?.code,
      });
    }
    if (info.error !== undefined) this.#publishError('batch', info.error);
    this.#checkpointer.afterBatch();
    if (info.error !== undefined) {
      this.#logger.error(
        { err: info.error, units: info.units, code: (info.error as { code?: string }).code },
        'a write batch failed; every unit of it was rejected',
      );
    }
    if (this.#events.listenerCount('commit') > 0) this.#events.emit('commit', info);
  }
}

/** Runs `quick_check` or `integrity_check` and returns its messages (`['ok']` when healthy). */
function runCheck(reader: Reader, level: CheckLevel): string[] {
  const rows = reader.rawRows(
    `PRAGMA ${level === 'full' ? 'integrity_check' : 'quick_check'}(100)`,
  );
  return rows.map((r) => String(r[0]));
}

/**
 * Replaces a closed database with a backup: verifies the backup, moves the current files to
 * quarantine (never deletes them), and copies the backup into place. Refuses with `LOCKED`
 * while any process has the database open. `encryption` is needed for encrypted backups.
 */
export function restore(options: {
  path: string;
  backupPath: string;
  encryption?: { key: string } | { passphrase: string };
}): Promise<{ restoredFrom: string; quarantineDir: string | undefined }> {
  return restoreBackup(path.resolve(options.path), path.resolve(options.backupPath), {
    source: options.encryption,
  });
}

/**
 * Opens (creating if needed) a walguard database at `options.path`: one writer connection in
 * a worker thread and one reader connection, each with every setting applied and read back.
 */
export function openDatabase<DB>(
  options: WalguardOptions | OptionsWithConfig,
): Promise<Walguard<DB>> {
  return Walguard.open<DB>(options);
}
