/**
 * The memory scenario: a flood of 1,000,000 deferred 1 KiB units must keep the peak RSS of
 * the process under a stated bound. Run in a fresh process (`bench/memory-trial.ts`) by
 * `run.ts` in a full run (not `--quick`), or alone with `--only memory`.
 *
 * Why 512 MiB: the queue holds at most `maxPendingUnits` (10,000) units and `maxPendingBytes`
 * (64 MiB) of SQL and parameters; past either, `defer()` makes its caller wait. With 1 KiB
 * units the unit limit binds first (~11 MiB of payload); the bound allows the byte limit in
 * full, twice (the JS strings and their copy for the writer worker: 128 MiB), plus one batch
 * in flight (`maxBatchBytes` 4 MiB, in both threads: 8 MiB), the engine's page caches (16 MiB
 * for the writer and for the reader: 32 MiB) and WAL index, and the runtime: Node, the writer
 * worker, and tsx in both threads (the other trials peak at 90-200 MiB). That is ~370 MiB;
 * 512 MiB leaves room for the garbage collector's slack. A queue that did not push back would
 * hold all 1,000,000 units (> 1 GiB) and blow through it.
 */

import type { RunMeta } from './report.js';

/** The flood. */
export const MEMORY = { units: 1_000_000, rowBytes: 1024, boundMiB: 512 } as const;

/** What the memory trial measures. */
export interface MemoryResult {
  units: number;
  rowBytes: number;
  /** From the first `defer()` to the end of `close()` (flush, commit, checkpoint). */
  elapsedMs: number;
  unitsPerSec: number;
  /** `process.resourceUsage().maxRSS` after `close()`: the whole process, all threads. */
  peakRssMiB: number;
  /** Highest `memoryUsage().rss` sampled every 50 ms (the loop turns while the queue pushes back). */
  sampledPeakRssMiB: number;
  /** Highest `memoryUsage().heapUsed` sampled, main thread. */
  sampledPeakHeapMiB: number;
  /** `defer()` calls whose promise did not resolve at once (the queue pushed back). */
  pushedBack: number;
  commits: number;
  maxBatchUnits: number;
  deferredErrors: number;
  fsyncMs: number;
  /** Rows counted afterwards by a fresh `libsql` connection in the runner's process. */
  rowsAfter?: number;
  /** RSS bound met, and every row there. */
  ok?: boolean;
}

const mib = (x: number) => x.toFixed(0);

/** The header of a run of the memory scenario alone (`--only memory`). */
export function renderMemoryHeader(meta: RunMeta): string {
  const versions = Object.entries(meta.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return [
    `# walguard benchmarks — ${meta.label}`,
    '',
    `- Date: ${meta.date}`,
    `- Command: \`${meta.command}\``,
    `- Machine: ${meta.machine.cpu}, ${meta.machine.cores} cores, ${meta.machine.memoryGiB.toFixed(1)} GiB, ${meta.machine.os} (shared with other work)`,
    `- Node ${meta.node}; ${versions}`,
    meta.profile.slowDisk
      ? `- Disk: slow-disk profile — \`LD_PRELOAD=${meta.profile.shim}\` delays every fsync in the trial folder by ${meta.profile.fsyncDelayUs} µs`
      : '- Disk: as it is',
    `- Run time: ${meta.totalSeconds.toFixed(0)} s`,
  ].join('\n');
}

/** The markdown section of a memory result. */
export function renderMemory(r: MemoryResult, command: string): string {
  const rows = r.rowsAfter === undefined ? '?' : r.rowsAfter.toLocaleString('en-US');
  const verdict = r.peakRssMiB <= MEMORY.boundMiB && r.rowsAfter === r.units ? 'met' : '**missed**';
  return [
    `## Memory: a flood of ${r.units.toLocaleString('en-US')} deferred ${r.rowBytes / 1024} KiB units`,
    '',
    `\`db.defer()\` of each unit in turn, awaiting its promise (at once unless the queue pushes back), then \`close()\`; a fresh process (\`${command}\`); rows counted afterwards by a fresh \`libsql\` connection.`,
    '',
    '| figure | value |',
    '| --- | --- |',
    `| peak RSS (\`resourceUsage().maxRSS\`, all threads) | ${mib(r.peakRssMiB)} MiB (bound ≤ ${MEMORY.boundMiB} MiB: ${verdict}) |`,
    `| peak RSS sampled every 50 ms / main heap used | ${mib(r.sampledPeakRssMiB)} / ${mib(r.sampledPeakHeapMiB)} MiB |`,
    `| units/s (first \`defer()\` to end of \`close()\`) | ${Math.round(r.unitsPerSec).toLocaleString('en-US')} (${(r.elapsedMs / 1000).toFixed(1)} s) |`,
    `| \`defer()\` calls that waited for room | ${r.pushedBack.toLocaleString('en-US')} |`,
    `| commits / largest batch | ${r.commits.toLocaleString('en-US')} / ${r.maxBatchUnits} units |`,
    `| deferred errors | ${r.deferredErrors} |`,
    `| rows after | ${rows} |`,
    `| fsync (4 KiB) in the trial folder | ${r.fsyncMs.toFixed(2)} ms |`,
  ].join('\n');
}
