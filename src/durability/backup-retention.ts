/**
 * Which backups to keep: the retention policy, and the backup file names it reads.
 *
 * Strategy: a pure function decides, from a list of backups and the time, which ones to
 * prune; the caller lists the backup folder, parses the names, deletes what it is told.
 * Keeping the decision pure makes every rule a row in a table test, and keeps the one
 * destructive step (deleting a backup) small and separate.
 *
 * The policy keeps the union of:
 * - the newest `keepLast` backups (at least 1: the newest backup is never pruned), and
 * - for each of the last `keepDailyDays` UTC days (today, as given by `now`, and the days
 *   before it), the newest backup taken that day.
 * Everything else is pruned.
 *
 * Invariants (what is never pruned, whatever the policy):
 * - the newest backup;
 * - a backup dated after `now` (a clock that went backwards, or a skewed machine): it is
 *   kept, and it does not count towards `keepLast`, so it cannot push a real recent backup
 *   out of the window;
 * - a backup whose date is invalid: what cannot be dated cannot be judged old.
 *
 * Days are UTC days so that the decision does not depend on the machine's time zone, and
 * does not shift twice a year with daylight saving time.
 *
 * File names are `<name>.<UTC timestamp>.db`, e.g. `app.20261125T180102.345Z.db`: ISO 8601
 * basic format with milliseconds, so two backups taken in the same second get distinct
 * names, and for one `<name>` the names sort (as strings) in the order they were taken.
 * The parser also accepts the timestamp without milliseconds.
 */
import { WalguardError } from '../errors.js';

/** A backup as the policy sees it. */
export interface BackupEntry {
  /** Where the backup is; returned as is when it is to be pruned. */
  path: string;
  /** When it was taken. */
  takenAt: Date;
}

/** How many backups to keep. */
export interface RetentionPolicy {
  /** Keep the newest N backups. Integer, minimum 1. */
  keepLast: number;
  /** Also keep the newest backup of each of the last D UTC days, today included. Integer,
   * minimum 0 (0: no daily backups beyond `keepLast`). */
  keepDailyDays: number;
}

/** The parts of a backup file name. */
export interface BackupFileName {
  /** The part before the timestamp (the database's name). */
  name: string;
  /** The time in the name. */
  takenAt: Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The paths of the backups to delete under `policy` at time `now`, oldest first. Pure: it
 * reads nothing but its arguments. Throws `INVALID_OPTION` for an invalid policy or `now`.
 */
export function selectBackupsToPrune(
  backups: readonly BackupEntry[],
  policy: RetentionPolicy,
  now: Date,
): string[] {
  checkInteger('keepLast', policy?.keepLast, 1);
  checkInteger('keepDailyDays', policy?.keepDailyDays, 0);
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected \`now\` to be a valid Date, got \`${String(now)}\``,
    );
  }
  const nowMs = now.getTime();
  const keep = new Set<string>();
  const candidates: { path: string; at: number }[] = [];
  for (const { path, takenAt } of backups) {
    const at = takenAt instanceof Date ? takenAt.getTime() : Number.NaN;
    // Undatable or future-dated: never pruned (see the module header).
    if (Number.isNaN(at) || at > nowMs) keep.add(path);
    else candidates.push({ path, at });
  }
  // Newest first; ties broken by path so the result does not depend on input order.
  candidates.sort((a, b) => b.at - a.at || (a.path < b.path ? 1 : a.path > b.path ? -1 : 0));

  for (const { path } of candidates.slice(0, policy.keepLast)) keep.add(path);

  const today = utcDay(nowMs);
  const keptDays = new Set<number>();
  for (const { path, at } of candidates) {
    const day = utcDay(at);
    if (today - day < policy.keepDailyDays && !keptDays.has(day)) {
      keptDays.add(day); // candidates are newest first: the first seen is the day's newest
      keep.add(path);
    }
  }

  // Oldest first; a path listed twice is pruned once, and only if no entry of it is kept.
  const pruned = new Set<string>();
  for (let i = candidates.length - 1; i >= 0; i--) {
    const { path } = candidates[i]!;
    if (!keep.has(path)) pruned.add(path);
  }
  return [...pruned];
}

/**
 * `app` + 2026-11-25T18:01:02.345Z → `app.20261125T180102.345Z.db`. Throws
 * `INVALID_OPTION` for an empty name, one with a path separator or NUL, or an invalid date.
 */
export function formatBackupFileName(name: string, takenAt: Date): string {
  if (typeof name !== 'string' || name === '' || /[/\\\0]/.test(name)) {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected the backup \`name\` to be a non-empty file name without separators, got \`${String(name)}\``,
    );
  }
  return `${name}.${formatBackupTimestamp(takenAt)}.db`;
}

/** 2026-11-25T18:01:02.345Z → `20261125T180102.345Z` (ISO 8601 basic, UTC, milliseconds). */
export function formatBackupTimestamp(takenAt: Date): string {
  if (!(takenAt instanceof Date) || Number.isNaN(takenAt.getTime())) {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected \`takenAt\` to be a valid Date, got \`${String(takenAt)}\``,
    );
  }
  const iso = takenAt.toISOString(); // 2026-11-25T18:01:02.345Z
  if (iso.length !== 24) {
    // Years beyond 9999 or before 0 have a longer ISO form; no backup is taken then.
    throw new WalguardError('INVALID_OPTION', `Cannot name a backup taken at ${iso}`);
  }
  return iso.replace(/[-:]/g, '');
}

/** The pattern of a backup file name: name, then date, time, optional milliseconds. */
const BACKUP_NAME = /^(.+)\.(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?:\.(\d{3}))?Z\.db$/;

/**
 * Parses a backup file name (or the last segment of a path), or returns null when it is not
 * one: other files in a backup folder are not backups, and are never pruned.
 */
export function parseBackupFileName(fileName: string): BackupFileName | null {
  const last = fileName.slice(Math.max(fileName.lastIndexOf('/'), fileName.lastIndexOf('\\')) + 1);
  const match = BACKUP_NAME.exec(last);
  if (match === null) return null;
  const [, name, y, mo, d, h, mi, s, ms] = match;
  const parts = [y, mo, d, h, mi, s, ms ?? '0'].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const [year, month, day, hour, minute, second, milli] = parts;
  const time = Date.UTC(year, month - 1, day, hour, minute, second, milli);
  const takenAt = new Date(time);
  // Date.UTC rolls 2026-02-30 over to March: a round trip catches impossible dates.
  if (
    takenAt.getUTCFullYear() !== year ||
    takenAt.getUTCMonth() !== month - 1 ||
    takenAt.getUTCDate() !== day ||
    takenAt.getUTCHours() !== hour ||
    takenAt.getUTCMinutes() !== minute ||
    takenAt.getUTCSeconds() !== second
  ) {
    return null;
  }
  return { name: name!, takenAt };
}

/** The UTC day number (days since 1970-01-01) of a time in ms. */
function utcDay(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function checkInteger(name: string, value: unknown, min: number): void {
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected \`${name}\` to be an integer >= ${min}, got \`${String(value)}\` (${typeof value})`,
    );
  }
}
