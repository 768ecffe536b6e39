/**
 * Integrity checks: `quick_check` or `integrity_check` on a read connection, at open and on
 * `db.check()`.
 *
 * Strategy: SQLite's own checks, capped at 100 messages. `quick_check` verifies every page
 * and the b-tree structure in O(N); `integrity_check` also cross-checks every index against
 * its table (O(N log N)). Neither changes the file. A failed check publishes the
 * `walguard:corruption` channel event; what to do about it (fail, quarantine and restore) is
 * the caller's decision.
 */
import { performance } from 'node:perf_hooks';
import { hasSubscribers, publish } from '../metrics/channels.js';

/** Integrity check levels: `quick` runs `quick_check`, `full` runs `integrity_check`. */
export type CheckLevel = 'quick' | 'full';

/** The result of `check()`. */
export interface CheckResult {
  /** True when the check reported `ok` (and, for `check('full')`, no column holds TEXT that is not UTF-8). */
  ok: boolean;
  /** The level run. */
  level: CheckLevel;
  /** The check's messages (`['ok']` when healthy; at most 100). */
  messages: string[];
  /** How long it took, in ms. */
  durationMs: number;
}

/** The one call a check needs from a connection (here or on a reader thread). */
export interface RawRowSource {
  /** Runs a PRAGMA and returns its rows as arrays of values. */
  rawRows(sql: string): unknown[][] | Promise<unknown[][]>;
  /** For a `full` check: one message per column holding TEXT that is not UTF-8. */
  invalidText?(): string[] | Promise<string[]>;
}

/** The PRAGMA a level runs. */
export function checkPragma(level: CheckLevel): string {
  return level === 'full' ? 'integrity_check' : 'quick_check';
}

/**
 * Runs the check on `source` and publishes it (`walguard:integrity`, and
 * `walguard:corruption` when it failed on demand). `trigger` says why it ran.
 */
export async function runIntegrityCheck(
  source: RawRowSource,
  level: CheckLevel,
  path: string,
  trigger: 'open' | 'check',
): Promise<CheckResult> {
  const started = performance.now();
  const rows = await source.rawRows(`PRAGMA ${checkPragma(level)}(100)`);
  const checked = rows.map((r) => String(r[0]));
  const damaged = !(checked.length === 1 && checked[0] === 'ok');
  // Text that is not UTF-8 (reads return it as bytes): on a `full` check on demand, not at open.
  const invalidText =
    level === 'full' && trigger === 'check' ? ((await source.invalidText?.()) ?? []) : [];
  const messages = damaged
    ? [...checked, ...invalidText]
    : invalidText.length > 0
      ? invalidText
      : checked;
  const ok = !damaged && invalidText.length === 0;
  const result: CheckResult = { ok, level, messages, durationMs: performance.now() - started };
  if (hasSubscribers('integrity')) {
    publish('integrity', {
      path,
      level,
      ok,
      durationMs: result.durationMs,
      trigger,
      messages: ok ? undefined : messages.slice(0, 5),
    });
  }
  if (damaged && trigger === 'check' && hasSubscribers('corruption')) {
    publish('corruption', { path, source: 'integrity', message: messages.slice(0, 5).join('; ') });
  }
  return result;
}

/** The checks run on demand since open: how many, how many failed, the last result. */
export class IntegrityRecord {
  /** `check()` calls. */
  checks = 0;
  /** Of those, checks that found damage. */
  failures = 0;
  /** The last result. */
  last: CheckResult | undefined;

  /** Records one result and returns it. */
  add(result: CheckResult): CheckResult {
    this.checks++;
    if (!result.ok) this.failures++;
    this.last = result;
    return result;
  }
}
