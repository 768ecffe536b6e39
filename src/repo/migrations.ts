/**
 * Migrations: Kysely's `Migrator`, run through walguard's writer, one transaction per migration.
 *
 * Strategy. Kysely's `SqliteAdapter` says `supportsTransactionalDdl = false`, so left alone the
 * `Migrator` runs each statement of a migration, and the row that records it, as separate
 * writes: a failure (or a crash) halfway leaves half a migration applied and unrecorded. SQLite
 * does support transactional DDL (CREATE/ALTER/DROP roll back like any write), so walguard hands
 * the `Migrator` a `Kysely` whose adapter says `true`. The `Migrator` then wraps its run in
 * `db.transaction()` — one walguard interactive transaction, on the writer, under a SAVEPOINT
 * inside the batch's `BEGIN IMMEDIATE` — holding the migration's statements *and* its row in
 * the migration table. `runMigrations` calls `migrateUp()` once per pending migration, so each
 * migration is its own all-or-nothing, durable unit:
 *
 * - a migration that throws is rolled back alone: the schema is as it was before it, earlier
 *   migrations of the run stay applied, later ones do not run, and the `MigrationError` names it;
 * - a crash at any point leaves every migration either applied and recorded, or neither.
 *
 * Sets. Kysely's `Migrator` keeps one ordered list per migration table and refuses a new
 * migration whose name sorts before an executed one (`allowUnorderedMigrations: false`, kept).
 * The stores ship their own migrations and an app adds its own, released on different
 * schedules, so each comes as a `MigrationSet` with its own migration table: a store can add a
 * migration in a later version without colliding with the app's names. Sets run in the order
 * given (stores first, so the app's migrations can reference the stores' tables).
 *
 * Not guaranteed / caveats:
 * - Kysely creates a set's migration and lock tables (one unit each) before the first
 *   migration's transaction; a failing first migration leaves those two empty bookkeeping tables.
 * - A migration runs inside an interactive transaction bounded by `migrationTimeoutMs`
 *   (default 10 min, not the 5 s of `transactionTimeoutMs`: a backfill may take minutes), and
 *   must use the `db` it is given: a write through the app's `Walguard` (not the migration's
 *   `db`) would wait for the migration itself, until that timeout.
 * - `PRAGMA foreign_keys` cannot change inside a transaction: a table rebuild (the 12-step ALTER)
 *   runs with foreign keys on; use `PRAGMA defer_foreign_keys = ON` inside the migration instead.
 * - Nothing is written when nothing is pending: reopening a migrated database runs no SQL but
 *   reads.
 */
import {
  type Dialect,
  Kysely,
  type Migration,
  type MigrationInfo,
  type MigrationResultSet,
  Migrator,
} from 'kysely';
import { WalguardError } from '../errors.js';
import type { Walguard } from '../walguard.js';
import type { WalguardAdapter } from './walguard-adapter.js';

export type { Migration } from 'kysely';

/** A named, independently ordered list of migrations with its own migration table. */
export interface MigrationSet {
  /** The set's name, used in reports and errors (`<set>/<migration>`). Non-empty. */
  readonly name: string;
  /** The migrations by name; they run in name order (Kysely's rule: names sort as they must run). */
  readonly migrations: Readonly<Record<string, Migration>>;
  /** Kysely's migration table of this set. Default: `kysely_migration` for the set named `app`, `walguard_migration_<name>` otherwise. */
  readonly tableName?: string;
  /** Kysely's migration lock table of this set. Default: the migration table's name + `_lock`. */
  readonly lockTableName?: string;
}

/** What `runMigrations` accepts: one set, several sets (run in order), or the app's migrations by name (a set named `app`). */
export type MigrationsInput =
  | MigrationSet
  | readonly MigrationSet[]
  | Readonly<Record<string, Migration>>;

/** Options of `runMigrations`. */
export interface RunMigrationsOptions {
  /**
   * Called once, before the first pending migration runs, with the pending migrations'
   * qualified names (`<set>/<migration>`) — the place for "back up before migrating". Not
   * called when nothing is pending. If it throws, no migration runs and the error is rethrown.
   */
  beforePending?: (pending: string[], info: { firstRun: boolean }) => Promise<void>;
}

/** One migration that ran. */
export interface MigrationRun {
  /** The set it belongs to. */
  set: string;
  /** Its name in the set. */
  migration: string;
  /** How long its transaction took, in ms, commit included. */
  durationMs: number;
}

/** What `runMigrations` did. */
export interface MigrationReport {
  /** The migrations that ran now, in order. */
  ran: MigrationRun[];
  /** Qualified names (`<set>/<migration>`) of the migrations that were pending at the start. */
  pending: string[];
  /** How many migrations had already been applied before this run. */
  alreadyApplied: number;
  /** Total time, in ms (the `beforePending` hook included). */
  durationMs: number;
}

/**
 * A migration failed (and was rolled back), or a set cannot run (a migration recorded as
 * executed is missing, or a new one sorts before an executed one). Migrations that ran before
 * it stay applied: they are in `report.ran`.
 */
export class MigrationError extends Error {
  /** The set of the migration that failed. */
  readonly set: string;
  /** The migration that failed, or `undefined` when the set could not start. */
  readonly migration: string | undefined;
  /** What ran before the failure. */
  readonly report: MigrationReport;

  constructor(
    message: string,
    set: string,
    migration: string | undefined,
    report: MigrationReport,
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'MigrationError';
    this.set = set;
    this.migration = migration;
    this.report = report;
  }
}

/** A set with its table names resolved. */
interface ResolvedSet {
  name: string;
  migrations: Readonly<Record<string, Migration>>;
  tableName: string;
  lockTableName: string;
}

/**
 * Runs every pending migration of `input` through `db`'s writer, each in its own transaction
 * (see the file header), sets in order. Resolves with what ran; rejects with a
 * `MigrationError` naming the migration that failed (it was rolled back; earlier ones stay).
 */
export async function runMigrations<DB>(
  db: Walguard<DB>,
  input: MigrationsInput,
  options: RunMigrationsOptions = {},
): Promise<MigrationReport> {
  const started = performance.now();
  const sets = resolveSets(input);
  const kysely = migrationKysely(db);
  const migrators = sets.map(
    (set) =>
      [
        set,
        new Migrator({
          db: kysely,
          provider: { getMigrations: async () => ({ ...set.migrations }) },
          migrationTableName: set.tableName,
          migrationLockTableName: set.lockTableName,
          allowUnorderedMigrations: false,
        }),
      ] as const,
  );
  const pending: string[] = [];
  const pendingPerSet: number[] = [];
  let alreadyApplied = 0;
  for (const [set, migrator] of migrators) {
    const infos: readonly MigrationInfo[] = await migrator.getMigrations();
    let count = 0;
    for (const info of infos) {
      if (info.executedAt === undefined) {
        pending.push(`${set.name}/${info.name}`);
        count++;
      } else {
        alreadyApplied++;
      }
    }
    pendingPerSet.push(count);
  }
  const report: MigrationReport = { ran: [], pending, alreadyApplied, durationMs: 0 };
  const log = db.options.logger.child({ component: 'migrations' });
  if (pending.length > 0) {
    log.info({ step: 'migrations', pending }, 'migrations pending');
    await options.beforePending?.([...pending], { firstRun: alreadyApplied === 0 });
    for (const [i, [set, migrator]] of migrators.entries()) {
      // One migrateUp() per pending migration: each is one transaction (no empty last one).
      for (let n = 0; n < pendingPerSet[i]!; n++) {
        const stepStarted = performance.now();
        const result: MigrationResultSet = await migrator.migrateUp();
        // Another instance (PostgreSQL: several may start together) applied the rest of
        // this set while this one waited for the migration lock.
        if (result.error === undefined && (result.results?.length ?? 0) === 0) break;
        const done = result.results?.find((r) => r.status === 'Success');
        const failed = result.results?.find((r) => r.status === 'Error');
        if (result.error !== undefined || failed !== undefined || done === undefined) {
          report.durationMs = performance.now() - started;
          throw migrationError(
            set.name,
            failed?.migrationName,
            result.error ?? new Error('the migrator found nothing to run'),
            report,
          );
        }
        report.ran.push({
          set: set.name,
          migration: done.migrationName,
          durationMs: performance.now() - stepStarted,
        });
      }
    }
  }
  report.durationMs = performance.now() - started;
  if (report.ran.length > 0) {
    log.info({ step: 'migrations', ran: report.ran.length }, 'migrations applied');
  }
  return report;
}

/** The names of the migrations of `input` that have not run yet (`<set>/<migration>`); reads only. */
export async function pendingMigrations<DB>(
  db: Walguard<DB>,
  input: MigrationsInput,
): Promise<string[]> {
  const kysely = migrationKysely(db);
  const pending: string[] = [];
  for (const set of resolveSets(input)) {
    const migrator = new Migrator({
      db: kysely,
      provider: { getMigrations: async () => ({ ...set.migrations }) },
      migrationTableName: set.tableName,
      migrationLockTableName: set.lockTableName,
    });
    for (const info of await migrator.getMigrations()) {
      if (info.executedAt === undefined) pending.push(`${set.name}/${info.name}`);
    }
  }
  return pending;
}

/** A `Kysely` on `db`'s dialect whose adapter reports transactional DDL (see the header). */
function migrationKysely<DB>(db: Walguard<DB>): Kysely<unknown> {
  const base = db.migrationDialect();
  const dialect: Dialect = {
    createDriver: () => base.createDriver(),
    createQueryCompiler: () => base.createQueryCompiler(),
    // SQLite's DDL is transactional (see the file header); the lock is the database's own.
    // PostgreSQL's own adapter already says true, and locks with pg_advisory_xact_lock.
    createAdapter: () =>
      base.engine === 'postgres'
        ? base.createAdapter()
        : (base.createAdapter() as WalguardAdapter).withTransactionalDdl(),
    createIntrospector: (k) => base.createIntrospector(k),
  };
  const log = db.options.kyselyLog;
  return new Kysely<unknown>({ dialect, plugins: [db.orderingPlugin], ...(log ? { log } : {}) });
}

function migrationError(
  set: string,
  migration: string | undefined,
  cause: unknown,
  report: MigrationReport,
): MigrationError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const earlier =
    report.ran.length === 0
      ? 'no migration of this run was applied'
      : `the ${report.ran.length} migration(s) before it in this run stay applied (${report.ran.map((r) => `${r.set}/${r.migration}`).join(', ')})`;
  const message =
    migration === undefined
      ? `Migrations of set "${set}" cannot run: ${reason}. Nothing of this set was applied`
      : `Migration "${set}/${migration}" failed and was rolled back — the schema is as it was before it, and no later migration ran; ${earlier}: ${reason}`;
  return new MigrationError(message, set, migration, report, cause);
}

/** Normalises `input` into sets with table names; checks names once. */
function resolveSets(input: MigrationsInput): ResolvedSet[] {
  const list: readonly MigrationSet[] = Array.isArray(input)
    ? (input as readonly MigrationSet[])
    : isSet(input)
      ? [input]
      : [{ name: 'app', migrations: input as Readonly<Record<string, Migration>> }];
  const seenNames = new Set<string>();
  const seenTables = new Set<string>();
  return list.map((set, i) => {
    if (!isSet(set)) {
      throw invalid(
        `Expected migration set ${i} to be an object with \`name\` (string) and \`migrations\` (object)`,
      );
    }
    if (!/^[A-Za-z0-9_.-]+$/.test(set.name)) {
      throw invalid(
        `Expected a migration set name of letters, digits, \`_\`, \`.\` or \`-\`, got \`${set.name}\``,
      );
    }
    for (const [name, migration] of Object.entries(set.migrations)) {
      if (typeof migration?.up !== 'function') {
        throw invalid(`Expected migration \`${set.name}/${name}\` to have an \`up(db)\` function`);
      }
    }
    const tableName =
      set.tableName ??
      (set.name === 'app'
        ? 'kysely_migration'
        : `walguard_migration_${set.name.replace(/\W/g, '_')}`);
    const lockTableName =
      set.lockTableName ??
      (set.name === 'app' && set.tableName === undefined
        ? 'kysely_migration_lock'
        : `${tableName}_lock`);
    if (seenNames.has(set.name)) throw invalid(`Two migration sets are named \`${set.name}\``);
    if (seenTables.has(tableName)) {
      throw invalid(`Two migration sets use the migration table \`${tableName}\``);
    }
    seenNames.add(set.name);
    seenTables.add(tableName);
    return { name: set.name, migrations: set.migrations, tableName, lockTableName };
  });
}

function isSet(value: unknown): value is MigrationSet {
  const v = value as { name?: unknown; migrations?: unknown } | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.name === 'string' &&
    typeof v.migrations === 'object' &&
    v.migrations !== null &&
    typeof (v.migrations as { up?: unknown }).up !== 'function'
  );
}

function invalid(message: string): WalguardError {
  return new WalguardError('INVALID_OPTION', message);
}

/** True when the database has a table other than migration bookkeeping. */
export function holdsUserTables(reader: { rawRows(sql: string): unknown[][] }): boolean {
  const rows = reader.rawRows(
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'kysely_migration%' AND name NOT LIKE 'walguard_migration%'",
  );
  return Number(rows[0]?.[0] ?? 0) > 0;
}
