import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultOptions } from '../../src/index.js';
import { readFresh, tempDir } from '../helpers.js';

const fixture = path.join(import.meta.dirname, '../fixtures/defer-flood.ts');
const UNITS = Number(process.env.WALGUARD_FLOOD_UNITS ?? 400_000);

describe('backpressure', () => {
  it(`flooding defer() with ${UNITS} small units keeps memory bounded and loses none after close()`, () => {
    const file = path.join(tempDir(), 'flood.db');
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', fixture, file, String(UNITS)],
      {
        encoding: 'utf8',
        timeout: 240_000,
      },
    );
    expect(child.status, child.stderr).toBe(0);
    const summary = JSON.parse(child.stdout.trim()) as {
      growth: number;
      peakPendingBytes: number;
    };
    // Pending work never exceeds the queue's byte bound (deferred units are bounded by bytes,
    // not by count: see write-queue.ts); one batch in flight comes on top.
    expect(summary.peakPendingBytes).toBeLessThanOrEqual(defaultOptions.maxPendingBytes);
    // RSS growth after a collection (what the queue retains) stays below what the whole flood
    // would need queued (~760 B per unit live: 400k units ~300 MB; measured with the bound:
    // ~150 MB, 108 MB of live heap for ~142k pending units). `WALGUARD_FLOOD_UNITS` for more.
    expect(summary.growth).toBeLessThan(256 * 1024 * 1024);
    expect(
      readFresh(file, 'select count(*) as n, min(id) as lo, max(id) as hi from flood'),
    ).toEqual([{ n: UNITS, lo: 0, hi: UNITS - 1 }]);
  }, 300_000);
});
