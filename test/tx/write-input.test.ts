/**
 * Contract line 9 for a misused API: anything write()/defer() cannot run is rejected with
 * INVALID_ARGUMENT and a message saying what to return, and nothing escapes the caller's
 * promise (the child process would die on an uncaught error or unhandled rejection).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFresh, tempDir } from '../helpers.js';

const fixture = path.join(import.meta.dirname, '../fixtures/misused-write.ts');

describe('write() and defer() given what they cannot run', () => {
  it('reject with INVALID_ARGUMENT saying what to return; nothing is thrown outside the promise', () => {
    const file = path.join(tempDir(), 'misuse.db');
    const child = spawnSync(process.execPath, ['--import', 'tsx', fixture, file], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.status, child.stderr).toBe(0);
    expect(child.stderr).toBe('');
    const report = JSON.parse(child.stdout.trim()) as Record<
      string,
      { code: string; message: string }
    >;
    for (const method of ['write', 'defer']) {
      for (const name of [
        'executed',
        'no return',
        'plain object',
        'array with a promise',
        'empty array',
        'a string',
      ]) {
        expect(report[`${method} ${name}`], `${method} ${name}`).toMatchObject({
          code: 'INVALID_ARGUMENT',
        });
      }
      expect(report[`${method} executed`]!.message).toMatch(/Promise.*\.execute\(\)/);
      expect(report[`${method} executed`]!.message).toMatch(/return the query builder/i);
      expect(report[`${method} no return`]!.message).toMatch(/undefined.*return/);
    }
    expect(report['write non-function']).toEqual({ code: 'INVALID_ARGUMENT' });
    // The executed queries ran on their own, outside any unit (that is what .execute() does);
    // nothing else was written.
    expect(readFresh(file, 'select id from t order by id')).toEqual([{ id: 5 }, { id: 5 }]);
  });
});
