/**
 * Contract line 4 and 6 for fire-and-forget defer(): a burst within the byte bound lands
 * whole; past it, memory stays bounded, drops are counted, and the log gets at most one line
 * per second (not one line and stack per unit).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';

const fixture = path.join(import.meta.dirname, '../fixtures/defer-burst.ts');

function burst(count: number, mode: 'defaults' | 'small-bound') {
  const file = path.join(tempDir(), 'burst.db');
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', fixture, file, String(count), mode],
    { encoding: 'utf8', timeout: 240_000, maxBuffer: 256 * 1024 * 1024 },
  );
  expect(child.status, child.stderr.slice(0, 2000)).toBe(0);
  const summary = JSON.parse(child.stdout.trim()) as {
    rows: number;
    deferredDropped: number;
    deferredUnits: number;
    rss: number[];
    loopMs: number;
    totalMs: number;
  };
  const logLines = child.stderr.split('\n').filter((l) => l.trim() !== '');
  return { summary, logLines, stderrBytes: child.stderr.length };
}

describe('fire-and-forget defer() bursts', () => {
  it('100,000 un-awaited deferred inserts with default options all land after close()', () => {
    const { summary, logLines } = burst(100_000, 'defaults');
    expect(summary.rows).toBe(100_000);
    expect(summary.deferredDropped).toBe(0);
    expect(summary.deferredUnits).toBe(100_000);
    expect(logLines).toEqual([]);
  }, 300_000);

  it('past the byte bound: RSS stays bounded, drops are counted, at most one log line per second', () => {
    const { summary, logLines, stderrBytes } = burst(500_000, 'small-bound');
    expect(summary.deferredDropped).toBeGreaterThan(0);
    expect(summary.rows + summary.deferredDropped).toBe(500_000);
    // Memory does not grow with the number of units offered: from 100k to 500k units, RSS
    // grows by far less than the units would take (~500 bytes each as JS objects).
    const growth = summary.rss[summary.rss.length - 1]! - summary.rss[1]!;
    expect(growth).toBeLessThan(64 * 1024 * 1024);
    expect(logLines.length).toBeLessThanOrEqual(Math.ceil(summary.totalMs / 1000) + 1);
    expect(stderrBytes).toBeLessThan(64 * 1024);
    expect(logLines.join('\n')).toMatch(/dropped/);
  }, 300_000);
});
