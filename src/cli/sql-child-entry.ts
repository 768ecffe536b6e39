/**
 * Entry point of the CLI's SQLite child (see `sql-child.ts`): reads one task as JSON on
 * stdin, prints a `{"started":true}` line, runs the task with a connection of its own,
 * prints one JSON result line and exits without closing the connection (see why there).
 *
 * One exception, so that a read-only command creates nothing: when `probe` or `check` finds
 * no `-wal` and no `-shm` beside the database, opening it creates them (SQLite needs them
 * in WAL mode); then the child closes its connection and ends without `process.exit`, so
 * that the connection really closes (libsql frees it when the process ends normally) and
 * SQLite, as the last connection, removes the two files again. With no WAL there before,
 * that close has nothing to checkpoint; if another process has the database open, SQLite
 * sees it and leaves the files to it.
 *
 * The child dies with the CLI (`dieWithParent`).
 */
import { existsSync } from 'node:fs';
import { dieWithParent } from '../durability/child-task.js';
import {
  applyConnectionSettings,
  type ConnectionSettings,
  readPragma,
} from '../durability/connection-settings.js';
import { openSqlite, type SqliteDatabase } from '../sqlite-types.js';
import type {
  CheckpointTaskResult,
  CheckTaskResult,
  MaintenanceTaskResult,
  MigrationSetInfo,
  ProbeResult,
  SqlChildResult,
  SqlTask,
} from './sql-child.js';

dieWithParent();

/** The connection of this run, for the final close (see the file header). */
let opened: SqliteDatabase | undefined;

/** Rows of a statement, as arrays. */
function rows(db: SqliteDatabase, sql: string): unknown[][] {
  return db.prepare(sql).raw(true).all() as unknown[][];
}

/** Opens the database and reads from it at once, so a wrong key fails here (SQLITE_NOTADB). */
async function open(path: string, key: string | undefined): Promise<SqliteDatabase> {
  const db = await openSqlite(path, key === undefined ? {} : { encryptionKey: key });
  opened = db;
  readPragma(db, 'schema_version');
  return db;
}

/** Applies the per-connection settings (not journal_mode) and reads them back. */
function readBackSettings(db: SqliteDatabase, s: ConnectionSettings): ProbeResult['settings'] {
  db.exec(`PRAGMA busy_timeout = ${s.busyTimeoutMs}`);
  db.exec(`PRAGMA synchronous = ${s.synchronous}`);
  db.exec('PRAGMA foreign_keys = ON');
  db.exec(`PRAGMA cache_size = ${-s.cacheSizeKiB}`);
  db.exec(`PRAGMA wal_autocheckpoint = ${s.walAutocheckpointPages}`);
  db.exec(`PRAGMA journal_size_limit = ${s.journalSizeLimitBytes}`);
  db.exec(`PRAGMA fullfsync = ${s.fullfsync ? 1 : 0}`);
  db.exec(`PRAGMA checkpoint_fullfsync = ${s.fullfsync ? 1 : 0}`);
  const n = (name: string) => Number(readPragma(db, name));
  return {
    synchronous: n('synchronous'),
    busy_timeout: n('busy_timeout'),
    foreign_keys: n('foreign_keys'),
    cache_size: n('cache_size'),
    wal_autocheckpoint: n('wal_autocheckpoint'),
    journal_size_limit: n('journal_size_limit'),
    fullfsync: n('fullfsync'),
    checkpoint_fullfsync: n('checkpoint_fullfsync'),
  };
}

/** The migration sets recorded in the database. */
function migrationSets(db: SqliteDatabase, tables: string[]): MigrationSetInfo[] {
  const sets: MigrationSetInfo[] = [];
  for (const table of tables) {
    const match = /^walguard_migration_(.+)$/.exec(table);
    if (table !== 'kysely_migration' && (match === null || table.endsWith('_lock'))) continue;
    const applied = rows(
      db,
      `SELECT name, timestamp FROM "${table.replaceAll('"', '""')}" ORDER BY name`,
    );
    const last = applied.at(-1);
    sets.push({
      table,
      set: match?.[1] ?? 'app',
      applied: applied.length,
      latest: last === undefined ? undefined : String(last[0]),
      latestAt: last === undefined ? undefined : String(last[1]),
    });
  }
  return sets;
}

function probe(db: SqliteDatabase, settings: ConnectionSettings): ProbeResult {
  db.exec('PRAGMA query_only = 1');
  const n = (name: string) => Number(readPragma(db, name));
  const pragmas: ProbeResult['pragmas'] = {
    journal_mode: String(readPragma(db, 'journal_mode')).toLowerCase(),
    page_size: n('page_size'),
    page_count: n('page_count'),
    freelist_count: n('freelist_count'),
    user_version: n('user_version'),
    schema_version: n('schema_version'),
    auto_vacuum: n('auto_vacuum'),
    encoding: String(readPragma(db, 'encoding')),
  };
  const tables = rows(
    db,
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
  ).map((r) => String(r[0]));
  return {
    pragmas,
    settings: readBackSettings(db, settings),
    tables,
    migrations: migrationSets(db, tables),
  };
}

function checkpoint(db: SqliteDatabase, mode: string): CheckpointTaskResult {
  const row = rows(db, `PRAGMA wal_checkpoint(${mode})`)[0] ?? [0, 0, 0];
  return {
    busy: Number(row[0]) === 1,
    logFrames: Number(row[1]),
    checkpointedFrames: Number(row[2]),
  };
}

/**
 * Tells the parent which step starts (a `{"phase":…}` line; writes to a pipe are synchronous
 * on Linux, so it arrives before the native call blocks), for its progress line.
 */
function phase(name: string): void {
  process.stdout.write(`${JSON.stringify({ phase: name })}\n`);
}

function maintain(db: SqliteDatabase, op: 'vacuum' | 'optimize'): MaintenanceTaskResult {
  const pagesBefore = Number(readPragma(db, 'page_count'));
  const freePagesBefore = Number(readPragma(db, 'freelist_count'));
  let statRows: number | undefined;
  phase(op);
  if (op === 'vacuum') {
    db.exec('VACUUM');
  } else {
    db.exec('ANALYZE');
    db.exec('PRAGMA optimize');
    statRows = Number(rows(db, 'SELECT count(*) FROM sqlite_stat1')[0]?.[0] ?? 0);
  }
  phase('checkpoint');
  checkpoint(db, 'TRUNCATE');
  return {
    pagesBefore,
    pagesAfter: Number(readPragma(db, 'page_count')),
    freePagesBefore,
    freePagesAfter: Number(readPragma(db, 'freelist_count')),
    ...(statRows === undefined ? {} : { statRows }),
  };
}

async function run(task: SqlTask): Promise<unknown> {
  const db = await open(task.path, task.key);
  switch (task.op) {
    case 'probe':
      return probe(db, task.settings);
    case 'check': {
      const level = task.full ? 'integrity_check' : 'quick_check';
      const result: CheckTaskResult = {
        messages: rows(db, `PRAGMA ${level}(100)`).map((r) => String(r[0])),
      };
      return result;
    }
    case 'checkpoint':
      applyConnectionSettings(db, 'writer', task.settings);
      return checkpoint(db, task.mode);
    case 'vacuum':
    case 'optimize':
      applyConnectionSettings(db, 'writer', task.settings);
      return maintain(db, task.op);
  }
}

let input = '';
process.stdin.on('data', (c: Buffer) => {
  input += c.toString();
});
process.stdin.on('end', async () => {
  let result: SqlChildResult;
  let pristine = false;
  try {
    const task = JSON.parse(input) as SqlTask;
    pristine =
      (task.op === 'probe' || task.op === 'check') &&
      !existsSync(`${task.path}-wal`) &&
      !existsSync(`${task.path}-shm`);
    process.stdout.write('{"started":true}\n');
    result = { ok: true, value: await run(task) };
  } catch (error) {
    const e = error as { code?: unknown; message?: unknown };
    result = {
      ok: false,
      code: typeof e.code === 'string' ? e.code : 'SQLITE_ERROR',
      message: typeof e.message === 'string' ? e.message : String(error),
    };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`, () => {
    if (!pristine || opened === undefined) process.exit(0);
    try {
      opened.close();
    } catch {
      // Freed when the process ends all the same.
    }
  });
});
