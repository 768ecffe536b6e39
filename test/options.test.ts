import { sql } from 'kysely';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { WalguardError } from '../src/errors.js';
import { resolveOptions } from '../src/options.js';
import { openTemp } from './helpers.js';

/** The `INVALID_OPTION` message `options` get. */
function problem(options: Record<string, unknown>): string {
  try {
    resolveOptions({ path: 'x.db', ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(WalguardError);
    expect((error as WalguardError).code).toBe('INVALID_OPTION');
    return (error as WalguardError).message;
  }
  throw new Error(`options were accepted: ${JSON.stringify(options)}`);
}

describe('option errors', () => {
  it('say that a passphrase is undefined (an unset environment variable), not that the shape is wrong', () => {
    const message = problem({
      encryption: { passphrase: process.env.WALGUARD_TEST_UNSET_VARIABLE },
    });
    expect(message).toBe(
      '`encryption.passphrase` is undefined: expected a non-empty string (is the environment variable it is read from set?)',
    );
    expect(problem({ encryption: { key: undefined } })).toMatch(/^`encryption\.key` is undefined/);
    expect(problem({ encryption: { passphrase: '' } })).toBe(
      '`encryption.passphrase` is an empty string: expected a non-empty string',
    );
  });

  it('never show a secret, whatever is wrong around it', () => {
    const secret = 'correct horse battery staple';
    for (const encryption of [
      { passphrase: secret, key: secret },
      { passphrase: secret, extra: secret },
      { passphrase: 42 },
      secret,
    ]) {
      const message = problem({ encryption });
      expect(message).not.toContain(secret);
      expect(message).not.toContain('42');
    }
    expect(problem({ encryption: { passphrase: 'a', key: 'b' } })).toBe(
      'Expected `encryption` to be an object with exactly one of `key` or `passphrase`, a non-empty string, got both',
    );
  });

  it('name a nested typo by its full path and suggest the key it resembles', () => {
    expect(problem({ backup: { keeplast: 3 } })).toBe(
      'Unknown option `backup.keeplast`; did you mean `backup.keepLast`?',
    );
    expect(problem({ checkpoint: { idleMS: 5 } })).toBe(
      'Unknown option `checkpoint.idleMS`; did you mean `checkpoint.idleMs`?',
    );
    expect(problem({ encryption: { passphrse: 'x' } })).toBe(
      'Unknown option `encryption.passphrse`; did you mean `encryption.passphrase`?',
    );
    expect(problem({ backup: { zzz: 1 } })).toBe('Unknown option `backup.zzz`');
  });

  it('point a key written at the wrong level to where it belongs', () => {
    expect(problem({ keepLast: 3 })).toBe(
      'Unknown option `keepLast`; did you mean `backup.keepLast`?',
    );
    expect(problem({ maxBatchUnit: 5 })).toBe(
      'Unknown option `maxBatchUnit`; did you mean `maxBatchUnits`?',
    );
  });

  it('say what a bad nested value must be', () => {
    expect(problem({ backup: { keepLast: 0 } })).toBe(
      'Expected `backup.keepLast` to be an integer >= 1, got `0` (number)',
    );
    expect(problem({ checkpoint: { walSizeLimitBytes: 10 } })).toBe(
      'Expected `checkpoint.walSizeLimitBytes` to be an integer >= 65536, got `10` (number)',
    );
  });
});

describe('logs', () => {
  it('name walguard and the component of each line once: no JSON key is repeated', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (line: string) => void lines.push(...line.trim().split('\n')) },
    );
    const db = await openTemp({ logger });
    await db.write((k) => sql`CREATE TABLE t (x)`.compile(k));
    await db.close();
    const steps = ['lock', 'inspect', 'key', 'writer', 'reader', 'integrity', 'ready'];
    const open = lines.filter((l) => steps.includes(JSON.parse(l).step));
    expect(open.map((l) => JSON.parse(l).step)).toEqual(steps);
    for (const line of lines) {
      const keys = [...line.matchAll(/[{,]"([^"]+)":/g)].map((m) => m[1]);
      const parsed = JSON.parse(line) as Record<string, unknown>;
      // Each key of the line's object appears once in the text (a repeated key would be
      // silently dropped by JSON.parse, and kept twice by log shippers).
      for (const key of Object.keys(parsed)) {
        expect(keys.filter((k) => k === key).length, line).toBe(1);
      }
      expect(parsed.lib, line).toBe('walguard');
    }
    for (const line of open) expect(JSON.parse(line)).toMatchObject({ component: 'open' });
  });
});
