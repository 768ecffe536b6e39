/**
 * Contract line 9: stored text that is not UTF-8 never aborts the process. walguard returns
 * such a value as a `Uint8Array` of its exact bytes (nothing is lost or replaced), on the
 * reader, the writer (`RETURNING`) and in transactions, and `check()` names the columns
 * holding it. Each case runs in a child process: before the fix, libsql panicked (exit 134).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';

const fixture = path.join(import.meta.dirname, '../fixtures/invalid-utf8.ts');

function run(mode: string) {
  const file = path.join(tempDir(), 'utf8.db');
  const child = spawnSync(process.execPath, ['--import', 'tsx', fixture, file, mode], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(child.status, `${mode}: ${child.stderr}`).toBe(0);
  return JSON.parse(child.stdout.trim()) as unknown;
}

describe('text that is not UTF-8', () => {
  it('read through db.kysely comes back as its exact bytes; valid text is untouched', () => {
    expect(run('reader')).toEqual([
      { id: 'number:1', s: 'bytes:66ff6f', ok: 'string:fine' },
      { id: 'number:2', s: 'string:plain', ok: 'string:é😀' },
    ]);
  });

  it('read through raw SQL with repeated and computed columns', () => {
    expect(run('raw-reader')).toEqual([
      { s: 'bytes:66ff6f', again: 'bytes:66ff6f', overlong: 'bytes:c0af' },
    ]);
  });

  it('returned by a write with RETURNING *', () => {
    expect(run('returning')).toEqual([{ id: 'number:1', s: 'bytes:66ff6f', ok: 'string:touched' }]);
  });

  it('returned by a write with RETURNING of columns and expressions', () => {
    expect(run('returning-expression')).toEqual([
      { id: 'number:3', s: 'bytes:eda080', more: 'bytes:eda0807461696c' },
    ]);
  });

  it('read inside a transaction (on the writer)', () => {
    expect(run('transaction')).toEqual([
      { id: 'number:1', s: 'bytes:66ff6f' },
      { id: 'number:2', s: 'string:plain' },
    ]);
  });

  it('streamed', () => {
    expect(run('stream')).toEqual([
      { id: 'number:1', s: 'bytes:66ff6f' },
      { id: 'number:2', s: 'string:plain' },
    ]);
  });

  it("check('full') reports the column that holds it", () => {
    const result = run('check') as { ok: boolean; messages: string[] };
    expect(result.ok).toBe(false);
    expect(result.messages.join('\n')).toMatch(/t\.s.*1 value.*not valid UTF-8/);
  });
});
