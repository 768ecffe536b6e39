/**
 * `presentMessages` as the power-loss checker's `presentUnits` (test/crash/checker.ts): the
 * chat messages a state holds, and whether each message's unit (the message and its
 * conversation's `updated_at` bump) is complete; the checker's verdicts (lost acknowledged
 * units, partial units, an unreadable state) follow from it.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { presentMessages } from '../../demo/present-messages.js';
import { checkState } from '../crash/checker.js';
import { openLibsql } from '../crash/libsql.js';
import { tempDir } from '../helpers.js';

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A folder with `db.sqlite` holding conversation 'c' (updated at 100) and messages 1-3 (created at 50, 100, 150). */
function chatState(): string {
  const dir = tempDir('walguard-present-units-');
  temps.push(dir);
  const db = openLibsql(join(dir, 'db.sqlite'));
  db.exec(`
    CREATE TABLE conversations (id TEXT PRIMARY KEY, updated_at INTEGER NOT NULL);
    CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, created_at INTEGER NOT NULL);
    INSERT INTO conversations VALUES ('c', 100);
    INSERT INTO messages VALUES (1, 'c', 50), (2, 'c', 100), (3, 'c', 150);
  `);
  db.close();
  return dir;
}

describe("presentMessages as the checker's presentUnits", () => {
  it('counts the units the reader returns: acknowledged ones missing are lost, incomplete ones partial', () => {
    const result = checkState(chatState(), {
      acked: [1, 2, 4],
      presentUnits: presentMessages,
    });
    expect(result.present).toBe(3);
    expect(result.lostAcked).toEqual([4]);
    // Message 3 is newer than its conversation's updated_at: half of its unit is missing.
    expect(result.partial).toEqual([3]);
    expect(result.corrupt).toBe(true);
    expect(result.integrity).toEqual(['ok']);
  });

  it('a reader that cannot read the state makes it unreadable, not a crash of the checker', () => {
    const result = checkState(chatState(), {
      acked: [1],
      presentUnits: (db) => {
        db.prepare('SELECT * FROM no_such_table').raw().all();
        return new Map();
      },
    });
    expect(result.corrupt).toBe(true);
    expect(result.error).toMatch(/no such table/);
    expect(result.lostAcked).toEqual([1]);
  });

  it('without a reader the workload tables are read, as before', () => {
    const result = checkState(chatState(), { acked: [1] });
    expect(result.present).toBe(0);
    expect(result.lostAcked).toEqual([1]);
  });
});
