import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'libsql';
import { afterAll, afterEach, expect, onTestFinished } from 'vitest';
import { openDatabase, type Walguard, WalguardError, type WalguardOptions } from '../src/index.js';

const opened: Walguard<unknown>[] = [];

afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
});

/** Folders made by `tempDir()` outside a test (in `beforeAll`, at load): removed after the file. */
const fileFolders: string[] = [];

afterAll(() => {
  for (const dir of fileFolders.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh temporary folder, removed with everything in it when the test that made it has
 * finished (after its `afterEach` hooks, so databases opened by `openTemp` are closed first),
 * or, when made outside a test (`beforeAll`, module load), after the test file.
 */
export function tempDir(prefix = 'walguard-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const remove = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    onTestFinished(remove);
  } catch {
    // Not inside a test.
    fileFolders.push(dir);
  }
  return dir;
}

/** Opens a database in a fresh folder; closed after the test. */
export async function openTemp<DB>(
  options: Partial<WalguardOptions> = {},
): Promise<Walguard<DB> & { path: string }> {
  const file = options.path ?? path.join(tempDir(), 'test.db');
  const db = await openDatabase<DB>({ logger: false, ...options, path: file });
  opened.push(db as Walguard<unknown>);
  return Object.assign(db, { path: file });
}

/** Reads through a fresh connection of its own (never walguard's). */
export function readFresh<T = Record<string, unknown>>(
  file: string,
  sql: string,
  params: unknown[] = [],
  encryptionKey?: string,
): T[] {
  const db = new Database(file, (encryptionKey ? { encryptionKey } : {}) as never);
  try {
    const statement = db.prepare(sql);
    const rows = statement.all(params) as Record<string, unknown>[];
    for (const row of rows) delete row._metadata;
    return rows as T[];
  } finally {
    db.close();
  }
}

/** Resolves after `ms`. */
export const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The `WalguardError` `promise` rejects with (fails the test when it resolves or rejects with anything else). */
export async function rejection(promise: Promise<unknown>): Promise<WalguardError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WalguardError);
  return error as WalguardError;
}
