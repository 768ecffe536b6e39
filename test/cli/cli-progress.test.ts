/**
 * Progress lines of the maintenance commands, off a terminal (`--progress`: one line per
 * phase, then one every 2 s). The fsync-delaying shim (test/crash/build/walrec.so) makes
 * VACUUM's commit and checkpoint slow, as on a laptop disk, so that the run has phases to
 * show; its reading of the database is over in milliseconds.
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildShim, shimEnv } from '../crash/recorder.js';
import { ensureBuilt, makeDatabase, tempDir, walguard } from './cli-harness.js';

beforeAll(async () => {
  buildShim();
  await ensureBuilt();
}, 120_000);

describe('vacuum --progress', () => {
  it('names its phases and shows no percentage where the total is unknown', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    await makeDatabase(file, { rows: 2000 });
    const run = await walguard(['vacuum', file, '--progress'], {
      env: shimEnv({ dir, fsyncDelayUs: 700_000 }),
    });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stderr.trim().split('\n');
    const rebuilding = lines.filter((l) => l.startsWith('vacuum: rebuilding the file…'));
    expect(rebuilding.length, run.stderr).toBeGreaterThan(0);
    for (const line of rebuilding) expect(line).toMatch(/… [\d.]+ [KMG]?i?B written, /);
    expect(lines.filter((l) => l.includes('%') && !l.startsWith('vacuum: checkpointing'))).toEqual(
      [],
    );
    expect(lines.at(-1)).toMatch(/^vacuum: done in /);
  });
});
