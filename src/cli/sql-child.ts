/**
 * Runs the CLI's SQLite work in a child process: reading a database's facts (`probe`),
 * integrity checks, and maintenance (`checkpoint`, `vacuum`, `optimize`).
 *
 * Why a child, as `src/durability/child-task.ts` explains for backups: a native panic on a
 * damaged file (invalid UTF-8 read as TEXT aborts the process) must not take the CLI down
 * before it reports; and the native calls are synchronous, so only with the work elsewhere
 * can the CLI's event loop draw a progress bar, reading the child's I/O counters
 * (`/proc/<pid>/io`) meanwhile. The key travels on stdin, never in argv or the environment.
 *
 * The child never closes its connection: it exits. Closing the last connection to a WAL
 * database checkpoints and deletes the `-wal` file, which `status` and `check` must not do
 * (they change nothing); maintenance commands checkpoint explicitly.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ConnectionSettings, SettingsReadBack } from '../durability/connection-settings.js';
import { WalguardError } from '../errors.js';
import type { CheckpointMode } from '../queue/protocol.js';

/** A task for the child. */
export type SqlTask =
  /** Reads the database's persistent facts and the configured settings as read back. */
  | { op: 'probe'; path: string; key?: string | undefined; settings: ConnectionSettings }
  /** Runs `quick_check` or (`full`) `integrity_check`. */
  | { op: 'check'; path: string; key?: string | undefined; full: boolean }
  /** Applies the settings as the writer would, then `wal_checkpoint(mode)`. */
  | {
      op: 'checkpoint';
      path: string;
      key?: string | undefined;
      settings: ConnectionSettings;
      mode: CheckpointMode;
    }
  /** `VACUUM`, then `wal_checkpoint(TRUNCATE)`. */
  | { op: 'vacuum'; path: string; key?: string | undefined; settings: ConnectionSettings }
  /** `ANALYZE` and `PRAGMA optimize`, then `wal_checkpoint(TRUNCATE)`. */
  | { op: 'optimize'; path: string; key?: string | undefined; settings: ConnectionSettings };

/** A migration set recorded in the database. */
export interface MigrationSetInfo {
  /** The migration table. */
  table: string;
  /** The set's name (`conversations`, `memories`, `app` for `kysely_migration`). */
  set: string;
  /** Migrations applied. */
  applied: number;
  /** The last one applied (by name), if any. */
  latest: string | undefined;
  /** When it was applied, as recorded. */
  latestAt: string | undefined;
}

/** What `probe` reads. */
export interface ProbeResult {
  /** Persistent facts of the file. */
  pragmas: {
    journal_mode: string;
    page_size: number;
    page_count: number;
    freelist_count: number;
    user_version: number;
    schema_version: number;
    auto_vacuum: number;
    encoding: string;
  };
  /** The configured per-connection settings, as read back after applying them. */
  settings: Omit<SettingsReadBack, 'journal_mode' | 'query_only'>;
  /** User tables (not `sqlite_*`). */
  tables: string[];
  /** Migration sets recorded. */
  migrations: MigrationSetInfo[];
}

/** What `check` returns. */
export interface CheckTaskResult {
  /** `['ok']` when healthy; at most 100 messages. */
  messages: string[];
}

/** What `checkpoint` returns. */
export interface CheckpointTaskResult {
  busy: boolean;
  logFrames: number;
  checkpointedFrames: number;
}

/** What `vacuum` and `optimize` return. */
export interface MaintenanceTaskResult {
  /** Pages before and after. */
  pagesBefore: number;
  pagesAfter: number;
  /** Free pages before and after. */
  freePagesBefore: number;
  freePagesAfter: number;
  /** `optimize`: rows of `sqlite_stat1` after ANALYZE. */
  statRows?: number;
}

/** The child's answer. */
export type SqlChildResult =
  | { ok: true; value: unknown }
  | { ok: false; code: string; message: string };

/** Callbacks while the child runs. */
export interface SqlChildHooks {
  /** Called once the child has read its task and is about to open the database. */
  onStart?(pid: number): void;
  /** Called when a maintenance task starts a step: `vacuum` or `optimize`, then `checkpoint`. */
  onPhase?(phase: string, pid: number): void;
}

/**
 * Runs `task` in a fresh Node process. Resolves with its value; rejects with an engine-like
 * error `{ code, message }` (SQLite's code) when the task failed, or `IO_ERROR` when the
 * child ended without an answer.
 */
export function runSqlChild<T>(task: SqlTask, hooks: SqlChildHooks = {}): Promise<T> {
  const source = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(
    new URL(`./sql-child-entry.${source ? 'ts' : 'js'}`, import.meta.url),
  );
  const args = source
    ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, entry]
    : [entry];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let seen = 0;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      // Every complete line before the result: `{"started":true}`, then `{"phase":…}` lines.
      for (let end = out.indexOf('\n', seen); end >= 0; end = out.indexOf('\n', seen)) {
        const line = out.slice(seen, end);
        seen = end + 1;
        if (child.pid === undefined) continue;
        if (line === '{"started":true}') hooks.onStart?.(child.pid);
        else if (line.startsWith('{"phase":')) {
          hooks.onPhase?.((JSON.parse(line) as { phase: string }).phase, child.pid);
        }
      }
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = out.trim().split('\n').pop() ?? '';
      let result: SqlChildResult | undefined;
      try {
        result = JSON.parse(line) as SqlChildResult;
      } catch {
        result = undefined;
      }
      if (result === undefined || !('ok' in result)) {
        reject(
          new WalguardError(
            'IO_ERROR',
            `The SQLite child process for \`${task.op}\` ended without a result (exit ${code ?? signal}); it may have met damaged data: ${err.trim().slice(-500)}`,
          ),
        );
      } else if (result.ok) {
        resolve(result.value as T);
      } else {
        reject(Object.assign(new Error(result.message), { code: result.code }));
      }
    });
    child.stdin.end(JSON.stringify(task));
  });
}
