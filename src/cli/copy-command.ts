/**
 * `walguard copy <db> <postgres-url>`: moves an embedded database into PostgreSQL.
 *
 * Order, and why:
 * 1. The source is read in one read transaction (one snapshot: a live app may keep writing).
 * 2. The target's schema comes from the same migrations that built the source: the stores'
 *    sets the source records as applied (`walguard_migration_conversations`, `…_memories`,
 *    with the memories' dimensions read from the source), then the app's own (`--migrations
 *    FILE`), run by `openDatabase({ url, migrations })` under PostgreSQL's migration lock.
 *    Tables nothing created on the target are refused by name, before any row is copied.
 * 3. A target table that already holds rows is refused unless `--append`.
 * 4. Rows go table by table, parents before children (foreign keys), in multi-row inserts of
 *    `--batch-rows`, each one durable walguard unit; embeddings (F32_BLOB) become `real[]`
 *    or pgvector values; identity sequences are moved past the copied ids.
 * 5. Each table's rows are counted on both sides; a difference fails the command (exit 1).
 *
 * Not done: the copy is not one transaction (a failure halfway leaves the rows copied so
 * far; rerun into a fresh database, or clear the tables); the migration bookkeeping tables
 * are not copied (the target's own record what ran there).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Kysely, sql } from 'kysely';
import { conversationMigrations } from '../repo/conversation-store.js';
import { engineSql } from '../repo/engine-sql.js';
import { memoryMigrations } from '../repo/memory-store.js';
import type { MigrationSet, MigrationsInput } from '../repo/migrations.js';
import { openSqlite, type SqliteDatabase } from '../sqlite-types.js';
import { openDatabase, type Walguard } from '../walguard.js';
import type { CommandSpec } from './command.js';
import { CliError, EXIT } from './exit-codes.js';
import { formatDuration } from './format.js';
import { unlock } from './target.js';

/** Most parameters in one PostgreSQL statement (the protocol's limit is 65535). */
const MAX_PARAMS = 60_000;

/** One table to copy. */
interface TablePlan {
  name: string;
  /** Columns both sides have, in the source's order. */
  columns: string[];
  /** Target columns that hold embeddings (`real[]` or `vector`). */
  vectors: Map<string, 'real[]' | 'vector'>;
  /** Rows in the source. */
  rows: number;
}

export const copyCommand: CommandSpec = {
  name: 'copy',
  summary: 'Copy an embedded database into PostgreSQL (schema by migrations, rows verified)',
  args: [
    { name: 'db', required: false, help: 'the database file (default: `path` of --config)' },
    {
      name: 'url',
      required: true,
      help: 'the PostgreSQL database, postgres://user@host:port/db (the password from $PGPASSWORD or ~/.pgpass, not the command line)',
    },
  ],
  options: {
    append: {
      type: 'boolean',
      help: 'copy into tables that already hold rows (default: refuse a non-empty target)',
    },
    migrations: {
      type: 'string',
      valueName: 'FILE',
      help: "an ES module exporting the app's migrations (default export or `migrations`), run on the target first",
    },
    'batch-rows': { type: 'string', valueName: 'N', help: 'rows per insert (default 1000)' },
  },
  description: `Creates the schema on PostgreSQL by running the migrations that built the database
(the stores' migration sets it has applied, then the app's own from --migrations FILE),
then copies every table's rows in batches, parents before children, with a progress bar,
and verifies the row count of each table. The source is read in one snapshot, so an app
may keep running on it (its later writes are not copied).

A target table that already holds rows is refused unless --append; a source table that
no migration created on the target is refused by name. Encrypted sources take the usual
--key-file / --passphrase-stdin / $WALGUARD_PASSPHRASE. See docs/postgres.md.`,
  json: '`database`, `url` (without password), `tables` (`name`, `rows`, `copied`), `durationMs`.',
  exitCodes: [
    [EXIT.PROBLEM, 'a row count differs after the copy, or the copy failed'],
    [EXIT.USAGE, 'the target is not empty (without --append), or a table has no schema there'],
    [EXIT.WRONG_KEY, 'the key does not open the database'],
    [EXIT.NOT_FOUND, 'there is no file at the path'],
  ],
  async run(context) {
    const started = performance.now();
    const url = context.args.url!;
    if (!/^postgres(ql)?:\/\//.test(url)) {
      throw new CliError('USAGE', `Expected <url> to be a postgres:// URL, got \`${url}\``);
    }
    const batchRows = Number(context.values['batch-rows'] ?? 1000);
    if (!Number.isSafeInteger(batchRows) || batchRows < 1) {
      throw new CliError('USAGE', 'Expected --batch-rows to be an integer >= 1');
    }
    const target = await context.target();
    const { key } = await unlock(target);
    const source = await openSqlite(
      target.path,
      key.key === undefined ? {} : { encryptionKey: key.key },
    );
    let db: Walguard<unknown> | undefined;
    try {
      source.exec('BEGIN');
      const tables = sourceTables(source);
      const migrations = [
        ...storeMigrations(source, tables.applied),
        ...(await appMigrations(context.values.migrations as string | undefined, context.io.cwd)),
      ];
      db = await openDatabase({ url, logger: context.logger, migrations });
      const plans = await planTables(source, db, tables.data);
      await refuseNonEmpty(db, plans, context.values.append === true);
      const total = plans.reduce((n, p) => n + p.rows, 0);
      let copied = 0;
      const progress = context.progress('copy');
      progress.watch(() => [copied, total]);
      const report: { name: string; rows: number; copied: number }[] = [];
      try {
        for (const plan of plans) {
          const before = await countRows(db, plan.name);
          await copyTable(source, db, plan, batchRows, (n) => {
            copied += n;
          });
          await moveSequences(db, plan.name);
          report.push({
            name: plan.name,
            rows: plan.rows,
            copied: (await countRows(db, plan.name)) - before,
          });
        }
      } finally {
        progress.stop(copied === total ? 'copied' : 'stopped');
      }
      const wrong = report.filter((r) => r.rows !== r.copied);
      const data = {
        database: target.path,
        url: db.options.path,
        tables: report,
        durationMs: Math.round(performance.now() - started),
      };
      const lines = report.map(
        (r) =>
          `  ${r.name}: ${r.copied} of ${r.rows} rows${r.rows === r.copied ? ', verified' : ' — COUNT DIFFERS'}`,
      );
      const text = `${target.path} → ${db.options.path} in ${formatDuration(data.durationMs)}\n${lines.join('\n')}\n`;
      return { exitCode: wrong.length === 0 ? EXIT.OK : EXIT.PROBLEM, data, text };
    } finally {
      try {
        source.exec('ROLLBACK');
      } catch {
        // The snapshot ends with the connection anyway.
      }
      source.close();
      await db?.close();
    }
  },
};

/** The source's data tables and the migration sets it records (by bookkeeping table name). */
function sourceTables(source: SqliteDatabase): { data: string[]; applied: Set<string> } {
  const names = (
    source
      .prepare(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE 'libsql\\_%' ESCAPE '\\' AND name NOT LIKE '%\\_shadow' ESCAPE '\\' ORDER BY name",
      )
      .raw(true)
      .all() as [string][]
  ).map((r) => r[0]);
  const bookkeeping = (n: string) => /^(kysely_migration|walguard_migration_)/.test(n);
  return {
    data: names.filter((n) => !bookkeeping(n)),
    applied: new Set(names.filter(bookkeeping)),
  };
}

/** The stores' migration sets the source has applied, with the memories' dimensions. */
function storeMigrations(source: SqliteDatabase, applied: Set<string>): MigrationSet[] {
  const sets: MigrationSet[] = [];
  if (applied.has('walguard_migration_conversations')) sets.push(conversationMigrations());
  if (applied.has('walguard_migration_memories')) {
    const row = source
      .prepare("SELECT type FROM pragma_table_info('memories') WHERE name = 'embedding'")
      .raw(true)
      .get() as [string] | undefined;
    const dimensions = Number(/\((\d+)\)/.exec(row?.[0] ?? '')?.[1]);
    sets.push(memoryMigrations({ dimensions }));
  }
  return sets;
}

/** The app's migrations from `--migrations FILE` (as one set named `app`, or its own sets). */
async function appMigrations(file: string | undefined, cwd: string): Promise<MigrationSet[]> {
  if (file === undefined) return [];
  const module = (await import(pathToFileURL(path.resolve(cwd, file)).href)) as {
    default?: MigrationsInput;
    migrations?: MigrationsInput;
  };
  const input = module.migrations ?? module.default;
  if (input === undefined) {
    throw new CliError(
      'USAGE',
      `${file} exports no migrations: export them as \`migrations\` or as the default export`,
    );
  }
  if (Array.isArray(input)) return [...input];
  const asSet = input as MigrationSet;
  if (typeof asSet.name === 'string' && typeof asSet.migrations === 'object') return [asSet];
  return [{ name: 'app', migrations: input as MigrationSet['migrations'] }];
}

/** What to copy of each table, parents before children; refuses tables the target lacks. */
async function planTables(
  source: SqliteDatabase,
  db: Walguard<unknown>,
  tables: string[],
): Promise<TablePlan[]> {
  const k = db.kysely as Kysely<unknown>;
  const existing = await engineSql(k).existingTables(k, tables);
  const missing = tables.filter((t) => !existing.includes(t));
  if (missing.length > 0) {
    throw new CliError(
      'USAGE',
      `No table ${missing.join(', ')} on the target: create it there first, through the app's migrations (--migrations FILE). Nothing was copied`,
      { missing },
    );
  }
  const plans: TablePlan[] = [];
  for (const name of parentsFirst(source, tables)) {
    const { rows: targetColumns } = await sql<{ name: string; udt: string }>`
      SELECT column_name AS name, udt_name AS udt FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = ${name}`.execute(k);
    const sourceColumns = (
      source
        .prepare(`SELECT name FROM pragma_table_info(${quoteText(name)})`)
        .raw(true)
        .all() as [string][]
    ).map((r) => r[0]);
    const columns = sourceColumns.filter((c) => targetColumns.some((t) => t.name === c));
    const vectors = new Map<string, 'real[]' | 'vector'>();
    for (const t of targetColumns) {
      if (t.udt === '_float4') vectors.set(t.name, 'real[]');
      if (t.udt === 'vector') vectors.set(t.name, 'vector');
    }
    const count = source
      .prepare(`SELECT count(*) FROM ${quoteId(name)}`)
      .raw(true)
      .get() as [number];
    plans.push({ name, columns, vectors, rows: Number(count[0]) });
  }
  return plans;
}

/** Tables ordered so that a table comes after every table its foreign keys reference. */
function parentsFirst(source: SqliteDatabase, tables: string[]): string[] {
  const parents = new Map<string, string[]>();
  for (const t of tables) {
    const refs = source
      .prepare(`SELECT "table" FROM pragma_foreign_key_list(${quoteText(t)})`)
      .raw(true)
      .all() as [string][];
    parents.set(
      t,
      refs.map((r) => r[0]).filter((p) => p !== t && tables.includes(p)),
    );
  }
  const out: string[] = [];
  const visit = (t: string, path: Set<string>) => {
    if (out.includes(t) || path.has(t)) return;
    path.add(t);
    for (const p of parents.get(t) ?? []) visit(p, path);
    out.push(t);
  };
  for (const t of tables) visit(t, new Set());
  return out;
}

async function countRows(db: Walguard<unknown>, table: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*) AS n FROM ${sql.table(table)}`.execute(
    db.kysely,
  );
  return Number(rows[0]!.n);
}

/** Refuses a target whose tables hold rows (unless `append`): a copy must not mix data. */
async function refuseNonEmpty(db: Walguard<unknown>, plans: TablePlan[], append: boolean) {
  if (append) return;
  const full: string[] = [];
  for (const p of plans) if ((await countRows(db, p.name)) > 0) full.push(p.name);
  if (full.length > 0) {
    throw new CliError(
      'USAGE',
      `The target already holds rows in ${full.join(', ')}: copy into an empty database, or pass --append to add to them. Nothing was copied`,
      { nonEmpty: full },
    );
  }
}

/** Copies one table's rows in multi-row inserts; `onRows` counts progress. */
async function copyTable(
  source: SqliteDatabase,
  db: Walguard<unknown>,
  plan: TablePlan,
  batchRows: number,
  onRows: (n: number) => void,
): Promise<void> {
  if (plan.columns.length === 0 || plan.rows === 0) return;
  const perBatch = Math.max(1, Math.min(batchRows, Math.floor(MAX_PARAMS / plan.columns.length)));
  const statement = source
    .prepare(`SELECT ${plan.columns.map(quoteId).join(', ')} FROM ${quoteId(plan.name)}`)
    .raw(true);
  let batch: Record<string, unknown>[] = [];
  const flush = async () => {
    const rows = batch;
    batch = [];
    await db.write((k) =>
      (k as Kysely<Record<string, object>>).insertInto(plan.name).values(rows as never),
    );
    onRows(rows.length);
  };
  for (const raw of statement.iterate() as Iterable<unknown[]>) {
    const row: Record<string, unknown> = {};
    plan.columns.forEach((c, i) => {
      const vector = plan.vectors.get(c);
      row[c] = vector === undefined ? raw[i] : toVector(raw[i], vector);
    });
    batch.push(row);
    if (batch.length >= perBatch) await flush();
  }
  if (batch.length > 0) await flush();
}

/** An F32_BLOB (little-endian float32 bytes) as a `real[]` or pgvector value. */
function toVector(value: unknown, kind: 'real[]' | 'vector'): unknown {
  if (!(value instanceof Uint8Array)) return value;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  const out = Array.from({ length: value.byteLength >>> 2 }, (_, i) =>
    view.getFloat32(i * 4, true),
  );
  return kind === 'vector' ? `[${out.join(',')}]` : out;
}

/** Moves each identity/serial sequence of `table` past the largest id now in it. */
async function moveSequences(db: Walguard<unknown>, table: string): Promise<void> {
  const { rows } = await sql<{ name: string }>`
    SELECT column_name AS name FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = ${table}
      AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')`.execute(db.kysely);
  for (const { name } of rows) {
    await db.write(() =>
      sql`SELECT setval(pg_get_serial_sequence(${quoteId(table)}, ${name}),
        GREATEST((SELECT max(${sql.ref(name)}) FROM ${sql.table(table)}), 1))`.compile(db.kysely),
    );
  }
}

/** An SQL identifier, double-quoted. */
function quoteId(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** An SQL string literal (for table names read from the source's own schema). */
function quoteText(name: string): string {
  return `'${name.replace(/'/g, "''")}'`;
}
