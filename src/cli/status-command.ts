/**
 * `walguard status <db>`: what an operator needs to know first, without changing anything.
 *
 * File facts (sizes, header, WAL, lock, backups) are gathered even when the database cannot
 * be read, so that a damaged or locked database still gets a full report; what needs the
 * key (settings, schema) is read by the SQLite child, and its failure becomes the exit code.
 */
import { existsSync } from 'node:fs';
import { backupDatabaseOf, listBackups, manifestPath } from '../durability/backups.js';
import { connectionSettingsOf } from '../durability/connection-settings.js';
import { inspectDatabaseFile } from '../durability/file-inspect.js';
import { keyFilePath } from '../durability/key-file.js';
import { findUnresolvedQuarantines } from '../durability/quarantine.js';
import { restoreIntentPath } from '../durability/restore.js';
import type { ResolvedOptions } from '../options.js';
import type { CommandSpec } from './command.js';
import { fileFacts, probeLock, readableByOthers, readWalHeader } from './database-facts.js';
import { CliError, EXIT, errorCodeOf, exitCodeOf } from './exit-codes.js';
import { formatAge, formatBytes, table } from './format.js';
import { type ProbeResult, runSqlChild } from './sql-child.js';
import { explainChildError, unlock } from './target.js';

const SYNCHRONOUS = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

export const statusCommand: CommandSpec = {
  name: 'status',
  summary: 'Sizes, settings, encryption, schema, last checkpoint, backups and lock of a database',
  args: [{ name: 'db', required: false, help: 'the database file (default: `path` of --config)' }],
  options: {},
  description: `Reports, without changing anything: the size of the database and its WAL, the
header (plaintext or encrypted, journal mode, page size), the settings as read back
from a connection configured like walguard's, the schema version (user_version and
each migration set applied), when the database file was last written (in WAL mode
only a checkpoint writes it: that is the last checkpoint), the backups of this database
and the age of the newest, whether another process holds the lock (with its pid), and how
the app's reads are configured to run (reader threads, and which reads stay on the main
thread; a running app's counts of where its reads ran are in \`stats().reads\` and its
metrics).

Warns (without failing) when the database, its WAL or key file, or a backup can be read
by other users: walguard creates its files 0600, but leaves an existing file's mode
alone. Reports a restore that was interrupted (the next open finishes it) as a problem.

Works while the app runs, and creates nothing: not even a lock file. Reading settings
and schema needs the key of an encrypted database; without it the rest is still
reported and the exit code says why.`,
  json: '`database`, `files` (db, wal, shm, keyFile), `header`, `encrypted`, `lock`, `lastCheckpoint`, `settings`, `schema`, `pages`, `backups`, `readers` (threads, mainThreadMaxUs, turnBudgetUs, nice), `quarantines` (folders of this database not resolved by a restore), `problems`, `warnings`, and `error` when the database could not be read.',
  exitCodes: [
    [EXIT.PROBLEM, 'the header has problems, or the WAL is past `checkpoint.walSizeLimitBytes`'],
    [EXIT.WRONG_KEY, 'the key does not open the database (the file facts are still reported)'],
    [EXIT.KEY_REQUIRED, 'the database is encrypted and no key was given'],
    [EXIT.NOT_ENCRYPTED, 'a key was given for a plaintext database'],
    [EXIT.CORRUPT, 'the database cannot be read'],
    [EXIT.NOT_FOUND, 'there is no file at the path'],
  ],
  async run(context) {
    const target = await context.target();
    const dbPath = target.path;
    const header = await inspectDatabaseFile(dbPath);
    if (header.kind === 'missing') {
      const quarantined = (await findUnresolvedQuarantines(dbPath)).map((q) => q.dir);
      throw new CliError(
        'NOT_FOUND',
        `There is no database at ${dbPath}${quarantined.length === 0 ? '' : `; its files were quarantined in ${quarantined.join(', ')} and no restore followed (walguard restore ${dbPath} latest)`}`,
        { path: dbPath, quarantines: quarantined },
      );
    }
    const files = {
      db: fileFacts(dbPath),
      wal: fileFacts(`${dbPath}-wal`),
      shm: fileFacts(`${dbPath}-shm`),
      keyFile: fileFacts(keyFilePath(dbPath)),
    };
    const lock = await probeLock(dbPath);
    const wal = readWalHeader(dbPath);
    const backupDir = target.resolved.backup.dir;
    const backups = await listBackups(backupDir, await backupDatabaseOf(dbPath));
    const quarantines = (await findUnresolvedQuarantines(dbPath)).map((q) => q.dir);
    const warnings = [
      ...[dbPath, `${dbPath}-wal`, `${dbPath}-shm`, keyFilePath(dbPath)],
      ...backups.flatMap((b) => [b.path, keyFilePath(b.path), manifestPath(b.path)]),
    ]
      .map(readableByOthers)
      .filter((w): w is string => w !== undefined);
    const newest = backups[0];
    const now = Date.now();

    let probe: ProbeResult | undefined;
    let failure: unknown;
    try {
      const unlocked = await unlock(target);
      try {
        probe = await runSqlChild<ProbeResult>({
          op: 'probe',
          path: dbPath,
          key: unlocked.key.key,
          settings: connectionSettingsOf(target.resolved),
        });
      } catch (error) {
        throw explainChildError(error, unlocked.key, target);
      }
    } catch (error) {
      failure = error;
    }

    const problems = [...header.problems];
    if (existsSync(restoreIntentPath(dbPath))) {
      problems.push(
        `A restore was interrupted (${restoreIntentPath(dbPath)}): the next open of the database finishes it`,
      );
    }
    const walLimit = target.resolved.checkpoint.walSizeLimitBytes;
    if (files.wal !== null && files.wal.bytes > walLimit) {
      problems.push(
        `The WAL is ${formatBytes(files.wal.bytes)}, past checkpoint.walSizeLimitBytes (${formatBytes(walLimit)}): checkpoints are not keeping up, or a reader holds an old snapshot`,
      );
    }
    const encrypted = header.kind === 'encrypted-or-garbage' && header.likelyEncrypted;
    const data: Record<string, unknown> = {
      database: dbPath,
      configFile: target.configFile ?? null,
      files,
      header: {
        kind: header.kind,
        pageSize: header.pageSize,
        journal: header.journal,
        problems: header.problems,
      },
      encrypted,
      encryption: { given: target.encryption, source: target.secretSource ?? null },
      lock,
      lastCheckpoint: {
        at: files.db?.modifiedAt ?? null,
        walCheckpointSequence: wal?.checkpointSequence ?? null,
      },
      settings:
        probe === undefined
          ? null
          : { journal_mode: probe.pragmas.journal_mode, ...probe.settings },
      schema:
        probe === undefined
          ? null
          : {
              userVersion: probe.pragmas.user_version,
              schemaVersion: probe.pragmas.schema_version,
              tables: probe.tables.length,
              migrations: probe.migrations,
            },
      pages:
        probe === undefined
          ? null
          : {
              pageSize: probe.pragmas.page_size,
              pageCount: probe.pragmas.page_count,
              freelistCount: probe.pragmas.freelist_count,
              autoVacuum: probe.pragmas.auto_vacuum,
            },
      backups: {
        dir: backupDir,
        count: backups.length,
        newest:
          newest === undefined
            ? null
            : {
                path: newest.path,
                takenAt: newest.takenAt.toISOString(),
                ageSeconds: Math.round((now - newest.takenAt.getTime()) / 1000),
                bytes: newest.bytes,
              },
      },
      readers: target.resolved.readers,
      quarantines,
      problems,
      warnings,
    };
    let exitCode: number = problems.length > 0 ? EXIT.PROBLEM : EXIT.OK;
    if (failure !== undefined) {
      exitCode = exitCodeOf(failure);
      data.error = {
        code: errorCodeOf(failure),
        message: (failure as Error).message,
      };
    }

    const rows: [string, string][] = [];
    const kind =
      header.kind === 'plaintext'
        ? 'plaintext SQLite'
        : encrypted
          ? 'encrypted'
          : header.kind === 'encrypted-or-garbage'
            ? 'not a SQLite database'
            : header.kind;
    rows.push([
      'database',
      `${formatBytes(files.db?.bytes ?? 0)}, ${kind}${header.journal ? `, ${header.journal} journal` : ''}${header.pageSize ? `, ${header.pageSize}-byte pages` : ''}`,
    ]);
    rows.push([
      'wal',
      files.wal === null
        ? 'none'
        : `${formatBytes(files.wal.bytes)}${wal ? ` (checkpoint sequence ${wal.checkpointSequence})` : ''}`,
    ]);
    rows.push([
      'encryption',
      encrypted
        ? `on${files.keyFile ? ` (key file ${files.keyFile.path})` : ' (raw key, no key file)'}`
        : header.kind === 'plaintext'
          ? 'off'
          : 'unknown',
    ]);
    rows.push([
      'lock',
      lock.held === true
        ? `held by ${lock.pid === undefined ? 'another process' : `process ${lock.pid}`} (the app is running)`
        : lock.held === false
          ? 'free (no walguard process has it open)'
          : `unknown: ${lock.error}`,
    ]);
    if (files.db !== null) {
      rows.push([
        'last checkpoint',
        `${files.db.modifiedAt} (${formatAge((now - Date.parse(files.db.modifiedAt)) / 1000)}; when the database file was last written)`,
      ]);
    }
    if (probe !== undefined) {
      const s = probe.settings;
      rows.push([
        'settings',
        `journal_mode=${probe.pragmas.journal_mode} synchronous=${SYNCHRONOUS[s.synchronous] ?? s.synchronous} busy_timeout=${s.busy_timeout} foreign_keys=${s.foreign_keys} cache_size=${s.cache_size} wal_autocheckpoint=${s.wal_autocheckpoint} journal_size_limit=${s.journal_size_limit}`,
      ]);
      const sets = probe.migrations.map(
        (m) => `${m.set} ${m.applied} applied${m.latest ? ` (latest ${m.latest})` : ''}`,
      );
      rows.push([
        'schema',
        `user_version ${probe.pragmas.user_version}, ${probe.tables.length} tables${sets.length > 0 ? `; ${sets.join('; ')}` : '; no migrations recorded'}`,
      ]);
      rows.push([
        'pages',
        `${probe.pragmas.page_count} page${probe.pragmas.page_count === 1 ? '' : 's'} of ${probe.pragmas.page_size} bytes, ${probe.pragmas.freelist_count} free`,
      ]);
    }
    rows.push([
      'backups',
      newest === undefined
        ? `none in ${backupDir}`
        : `${backups.length} in ${backupDir}; newest ${formatAge((now - newest.takenAt.getTime()) / 1000)} (${newest.path}, ${formatBytes(newest.bytes)})`,
    ]);
    rows.push(['reads', describeReaders(target.resolved.readers)]);
    if (quarantines.length > 0) {
      rows.push(['quarantined', `${quarantines.length} folder(s): ${quarantines.join(', ')}`]);
    }
    let text = `${dbPath}\n${table(rows)}\n`;
    if (problems.length > 0) text += `problems:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`;
    if (warnings.length > 0) text += `warnings:\n${warnings.map((w) => `  - ${w}`).join('\n')}\n`;
    if (failure !== undefined) {
      text += `cannot read the database: ${errorCodeOf(failure)}: ${(failure as Error).message}\n`;
    }
    return { exitCode, data, text };
  },
};

/** The reader configuration in one line (the live counts are a running app's `stats().reads`). */
function describeReaders(r: ResolvedOptions['readers']): string {
  const threads = `${r.threads} reader thread${r.threads === 1 ? '' : 's'} (nice ${r.nice})`;
  if (r.mainThreadMaxUs === Number.POSITIVE_INFINITY) {
    return `${threads}; every read on the main thread (mainThreadMaxUs: Infinity), streams on the threads`;
  }
  const budget =
    r.turnBudgetUs === Number.POSITIVE_INFINITY
      ? 'no turn budget'
      : `${r.turnBudgetUs} µs per event-loop turn`;
  return `${threads}; reads measured at most ${r.mainThreadMaxUs} µs on the main thread (${budget}), the rest on the threads`;
}
