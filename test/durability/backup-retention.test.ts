import { describe, expect, it } from 'vitest';
import {
  type BackupEntry,
  formatBackupFileName,
  formatBackupTimestamp,
  parseBackupFileName,
  type RetentionPolicy,
  selectBackupsToPrune,
} from '../../src/durability/backup-retention.js';

const NOW = new Date('2026-11-25T18:00:00.000Z');

/** Backups named by their ISO time, so a case reads as a list of times. */
const at = (...isos: string[]): BackupEntry[] =>
  isos.map((iso) => ({ path: iso, takenAt: new Date(iso) }));

describe('selectBackupsToPrune', () => {
  it.each<[string, BackupEntry[], RetentionPolicy, string[]]>([
    ['nothing to prune in an empty list', [], { keepLast: 3, keepDailyDays: 7 }, []],
    [
      'keeps everything while under keepLast',
      at('2026-11-25T10:00:00Z', '2026-11-24T10:00:00Z'),
      { keepLast: 3, keepDailyDays: 0 },
      [],
    ],
    [
      'keeps the newest N and prunes the rest, oldest first',
      at(
        '2026-11-25T09:00:00Z',
        '2026-11-25T17:00:00Z',
        '2026-11-25T11:00:00Z',
        '2026-11-25T13:00:00Z',
        '2026-11-25T15:00:00Z',
      ),
      { keepLast: 2, keepDailyDays: 0 },
      ['2026-11-25T09:00:00Z', '2026-11-25T11:00:00Z', '2026-11-25T13:00:00Z'],
    ],
    [
      'keeps the newest backup of each of the last D days, today included',
      at(
        '2026-11-25T08:00:00Z',
        '2026-11-25T16:00:00Z',
        '2026-11-24T01:00:00Z',
        '2026-11-24T23:59:59Z',
        '2026-11-23T12:00:00Z',
        '2026-11-22T12:00:00Z',
      ),
      { keepLast: 1, keepDailyDays: 3 },
      ['2026-11-22T12:00:00Z', '2026-11-24T01:00:00Z', '2026-11-25T08:00:00Z'],
    ],
    [
      'counts days in UTC: 23:59:59 and 00:00:00 are different days',
      at('2026-11-24T23:59:59Z', '2026-11-24T00:00:00Z', '2026-11-25T00:00:00Z'),
      { keepLast: 1, keepDailyDays: 2 },
      ['2026-11-24T00:00:00Z'],
    ],
    [
      'skips days without backups rather than reaching further back',
      at('2026-11-25T10:00:00Z', '2026-11-20T10:00:00Z', '2026-11-19T10:00:00Z'),
      { keepLast: 1, keepDailyDays: 3 },
      ['2026-11-19T10:00:00Z', '2026-11-20T10:00:00Z'],
    ],
    [
      'keeps the union of the newest N and the dailies',
      at(
        '2026-11-25T17:00:00Z',
        '2026-11-25T16:00:00Z',
        '2026-11-25T15:00:00Z',
        '2026-11-24T15:00:00Z',
        '2026-11-24T14:00:00Z',
        '2026-11-10T00:00:00Z',
      ),
      { keepLast: 3, keepDailyDays: 2 },
      ['2026-11-10T00:00:00Z', '2026-11-24T14:00:00Z'],
    ],
    [
      'keeps the newest backup even when it is older than the daily window',
      at('2026-10-01T00:00:00Z', '2026-09-01T00:00:00Z'),
      { keepLast: 1, keepDailyDays: 7 },
      ['2026-09-01T00:00:00Z'],
    ],
    [
      'never prunes a future-dated backup, nor lets it take a keepLast slot',
      at('2026-11-26T12:00:00Z', '2026-11-25T12:00:00Z', '2026-11-25T11:00:00Z'),
      { keepLast: 1, keepDailyDays: 0 },
      ['2026-11-25T11:00:00Z'],
    ],
    [
      'never prunes a backup with an invalid date',
      [
        { path: 'undated', takenAt: new Date('nope') },
        ...at('2026-11-25T12:00:00Z', '2026-11-25T11:00:00Z'),
      ],
      { keepLast: 1, keepDailyDays: 0 },
      ['2026-11-25T11:00:00Z'],
    ],
    [
      'breaks ties on time by path, whatever the input order',
      [
        { path: 'b', takenAt: new Date('2026-11-25T12:00:00Z') },
        { path: 'a', takenAt: new Date('2026-11-25T12:00:00Z') },
      ],
      { keepLast: 1, keepDailyDays: 0 },
      ['a'],
    ],
    [
      'includes a backup taken exactly at now',
      at('2026-11-25T18:00:00Z', '2026-11-25T17:00:00Z'),
      { keepLast: 1, keepDailyDays: 0 },
      ['2026-11-25T17:00:00Z'],
    ],
  ])('%s', (_name, backups, policy, expected) => {
    expect(selectBackupsToPrune(backups, policy, NOW)).toEqual(expected);
    // Pure: the same answer whatever the input order.
    expect(selectBackupsToPrune([...backups].reverse(), policy, NOW)).toEqual(expected);
  });

  it('never returns a path that is not in the input, nor the newest backup', () => {
    const backups = Array.from({ length: 200 }, (_, i) => ({
      path: `b${i}`,
      takenAt: new Date(NOW.getTime() - i * 3_600_000 * 7),
    }));
    const pruned = selectBackupsToPrune(backups, { keepLast: 5, keepDailyDays: 10 }, NOW);
    expect(pruned).not.toContain('b0');
    expect(pruned.every((p) => backups.some((b) => b.path === p))).toBe(true);
    // 200 backups 7 h apart: 5 newest (35 h) + one per day for 10 days, overlapping.
    expect(backups.length - pruned.length).toBe(5 + 10 - 2);
  });

  it.each<[string, RetentionPolicy, RegExp]>([
    ['keepLast 0', { keepLast: 0, keepDailyDays: 7 }, /`keepLast` to be an integer >= 1, got `0`/],
    ['keepLast 1.5', { keepLast: 1.5, keepDailyDays: 7 }, /`keepLast`.*got `1.5` \(number\)/],
    [
      'keepDailyDays -1',
      { keepLast: 1, keepDailyDays: -1 },
      /`keepDailyDays` to be an integer >= 0/,
    ],
    [
      'keepDailyDays as a string',
      { keepLast: 1, keepDailyDays: '7' as unknown as number },
      /got `7` \(string\)/,
    ],
  ])('rejects %s with INVALID_OPTION', (_name, policy, message) => {
    expect(() => selectBackupsToPrune([], policy, NOW)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: expect.stringMatching(message) }),
    );
  });

  it('rejects an invalid now with INVALID_OPTION', () => {
    expect(() =>
      selectBackupsToPrune([], { keepLast: 1, keepDailyDays: 0 }, new Date('x')),
    ).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });
});

describe('backup file names', () => {
  it.each<[string, string, string]>([
    ['app', '2026-11-25T18:01:02.345Z', 'app.20261125T180102.345Z.db'],
    ['app', '2026-01-05T03:04:05.000Z', 'app.20260105T030405.000Z.db'],
    ['my.app.v2', '2026-11-25T18:01:02.345Z', 'my.app.v2.20261125T180102.345Z.db'],
  ])('formats %s at %s as %s and parses it back', (name, iso, fileName) => {
    expect(formatBackupFileName(name, new Date(iso))).toBe(fileName);
    expect(parseBackupFileName(fileName)).toEqual({ name, takenAt: new Date(iso) });
  });

  it('formats timestamps in ISO 8601 basic format', () => {
    expect(formatBackupTimestamp(new Date('2026-11-25T18:01:02.345Z'))).toBe(
      '20261125T180102.345Z',
    );
  });

  it('sorts names of one database in the order the backups were taken', () => {
    const times = ['2026-11-25T18:01:02.345Z', '2026-11-25T18:01:02.346Z', '2027-01-01T00:00:00Z'];
    const names = times.map((t) => formatBackupFileName('app', new Date(t)));
    expect([...names].reverse().sort()).toEqual(names);
  });

  it.each<[string, { name: string; takenAt: string } | null]>([
    ['app.20261125T180102Z.db', { name: 'app', takenAt: '2026-11-25T18:01:02.000Z' }],
    [
      '/var/backups/app.20261125T180102.345Z.db',
      { name: 'app', takenAt: '2026-11-25T18:01:02.345Z' },
    ],
    ['C:\\backups\\app.20261125T180102Z.db', { name: 'app', takenAt: '2026-11-25T18:01:02.000Z' }],
    ['app.db', null],
    ['app.20261125T180102Z.db-wal', null],
    ['app.20261125T180102Z.db.tmp', null],
    ['.20261125T180102Z.db', null],
    ['app.20261125T180102.db', null],
    ['app.20261125T180102.34Z.db', null],
    ['app.20260230T000000Z.db', null],
    ['app.20261325T000000Z.db', null],
    ['app.20261125T240000Z.db', null],
    ['app.20261125T186000Z.db', null],
    ['app.00991125T120000Z.db', null],
    ['notes.txt', null],
  ])('parses %s', (fileName, expected) => {
    const parsed = parseBackupFileName(fileName);
    if (expected === null) expect(parsed).toBeNull();
    else expect(parsed).toEqual({ name: expected.name, takenAt: new Date(expected.takenAt) });
  });

  it.each<[string, unknown, unknown]>([
    ['an empty name', '', new Date()],
    ['a name with a slash', 'a/b', new Date()],
    ['a name with a backslash', 'a\\b', new Date()],
    ['an invalid date', 'app', new Date('x')],
    ['a date past year 9999', 'app', new Date('+010000-01-01T00:00:00Z')],
  ])('refuses to format %s', (_name, name, date) => {
    expect(() => formatBackupFileName(name as string, date as Date)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
  });
});
