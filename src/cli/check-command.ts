/**
 * `walguard check <db> [--full]`: `quick_check` or `integrity_check`, read-only, in a child
 * process (a damaged page cannot crash the CLI before it reports), with progress.
 */
import { performance } from 'node:perf_hooks';
import { isWalguardError } from '../errors.js';
import type { CommandSpec } from './command.js';
import { fileFacts } from './database-facts.js';
import { EXIT } from './exit-codes.js';
import { formatDuration } from './format.js';
import { readProbe } from './progress.js';
import { type CheckTaskResult, runSqlChild } from './sql-child.js';
import { explainChildError, unlock } from './target.js';

export const checkCommand: CommandSpec = {
  name: 'check',
  summary: 'Integrity check: quick_check, or integrity_check with --full',
  args: [{ name: 'db', required: false, help: 'the database file (default: `path` of --config)' }],
  options: {
    full: {
      type: 'boolean',
      help: 'run integrity_check (also checks every index against its table; slower)',
    },
  },
  description: `Runs SQLite's quick_check (default) or integrity_check (--full) on the database,
read-only, and prints what it found. quick_check reads every page once and catches
damaged pages and b-trees; integrity_check also verifies that every index matches its
table and takes several times longer. Works while the app runs (it reads a WAL
snapshot). Nothing is ever changed: to repair, restore a backup (walguard restore).`,
  json: '`database`, `healthy` (boolean), `level` (`quick` or `full`), `messages` (`["ok"]` when healthy, at most 100), `durationMs`.',
  exitCodes: [
    [EXIT.CORRUPT, 'the check found damage (or the file is not a readable database)'],
    [EXIT.WRONG_KEY, 'the key does not open the database'],
    [EXIT.KEY_REQUIRED, 'the database is encrypted and no key was given'],
    [EXIT.NOT_ENCRYPTED, 'a key was given for a plaintext database'],
    [EXIT.NOT_FOUND, 'there is no file at the path'],
  ],
  async run(context) {
    const target = await context.target();
    const unlocked = await unlock(target);
    const full = context.values.full === true;
    const level = full ? 'full' : 'quick';
    const total =
      (fileFacts(target.path)?.bytes ?? 0) + (fileFacts(`${target.path}-wal`)?.bytes ?? 0);
    const progress = context.progress(full ? 'integrity_check' : 'quick_check');
    const started = performance.now();
    let result: CheckTaskResult;
    try {
      result = await runSqlChild<CheckTaskResult>(
        { op: 'check', path: target.path, key: unlocked.key.key, full },
        // An integrity check re-reads pages: the estimate stops at 99% until it ends.
        { onStart: (pid) => progress.watch(readProbe(pid, total), 0.99) },
      );
    } catch (error) {
      const explained = explainChildError(error, unlocked.key, target);
      // Damage bad enough that the check itself stops (a malformed schema page) is a
      // finding of the check, reported like the others.
      if (!isWalguardError(explained, 'CORRUPT')) {
        progress.stop('failed');
        throw explained;
      }
      result = { messages: [(error as Error).message] };
    }
    const durationMs = performance.now() - started;
    const healthy = result.messages.length === 1 && result.messages[0] === 'ok';
    progress.stop(healthy ? 'ok' : 'damage found');
    const data: Record<string, unknown> = {
      database: target.path,
      healthy,
      level,
      messages: result.messages,
      durationMs: Math.round(durationMs),
    };
    if (!healthy) {
      data.error = {
        code: 'CORRUPT',
        message: `${target.path} failed its ${full ? 'integrity_check' : 'quick_check'}; nothing was changed. Restore a backup (walguard restore ${target.path} latest)`,
      };
    }
    const text = healthy
      ? `${target.path}: ${level} check ok (${formatDuration(durationMs)})\n`
      : `${target.path}: ${level} check found damage (${formatDuration(durationMs)}):\n${result.messages
          .map((m) => `  - ${m}`)
          .join(
            '\n',
          )}\nNothing was changed. Restore a backup: walguard restore ${target.path} latest\n`;
    return { exitCode: healthy ? EXIT.OK : EXIT.CORRUPT, data, text };
  },
};
