/**
 * One trial, in a process of its own:
 *
 *   node --import tsx bench/trial.ts <driver> '<json TrialParams>'
 *
 * `run.ts` starts one per trial, with a fresh folder holding a freshly prepared database
 * (`params.dir`); run by hand without `dir`, it prepares one under `bench/results/tmp/` and
 * removes it afterwards, which is the way to profile one peer:
 *
 *   node --cpu-prof --cpu-prof-dir=bench/results/profiles --import tsx bench/trial.ts \
 *     walguard-full '{"units":20000,"callers":256,"rowBytes":200,"readRatio":0,"preloadRows":0}'
 *
 * With `WALGUARD_BENCH_PROFILE=<dir>` set, the main thread's timed section alone is profiled
 * into `<dir>/<driver>-main.cpuprofile` (startup and module loading left out); `--cpu-prof`
 * still profiles the writer worker. `bench/profile-summary.ts` reads both.
 *
 * The timed section runs from the first call to the last acknowledgement (plus the driver's
 * `finishTimed()`: `walguard-deferred`'s `close()`). Opening, the fsync probe, read-backs and
 * closing are outside it. The result is printed as one line: `RESULT_MARKER` + JSON.
 */
import fs from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { printResult, runAsChild } from './child.js';
import { loadDriver } from './drivers/load-driver.js';
import { LatencyRecorder } from './latency.js';
import { TimedSectionProfiler } from './timed-section-profiler.js';
import {
  DRIVER_NAMES,
  type DriverName,
  type TrialParams,
  type TrialResult,
} from './trial-types.js';
import {
  countRows,
  databaseFile,
  makePayloads,
  measureFsync,
  prepareDatabase,
  runCallers,
} from './workload.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));

function usage(message: string): never {
  process.stderr.write(
    `${message}\nUsage: node --import tsx bench/trial.ts <${DRIVER_NAMES.join('|')}> '<json params>'\n`,
  );
  process.exit(2);
}

async function main(): Promise<void> {
  const [name, json] = process.argv.slice(2);
  if (!DRIVER_NAMES.includes(name as DriverName)) usage(`Unknown driver \`${name}\``);
  if (json === undefined) usage('Missing the JSON parameters');
  const params = JSON.parse(json) as TrialParams;

  let dir = params.dir;
  const ownDir = dir === undefined;
  if (dir === undefined) {
    const base = path.join(benchDir, 'results', 'tmp');
    fs.mkdirSync(base, { recursive: true });
    dir = fs.mkdtempSync(path.join(base, 'trial-'));
    await prepareDatabase(dir, params);
  }
  const file = databaseFile(dir);
  try {
    const result = await runTrial(name as DriverName, params, dir, file);
    printResult(result);
  } finally {
    if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function runTrial(
  name: DriverName,
  params: TrialParams,
  dir: string,
  file: string,
): Promise<TrialResult> {
  const fsyncMs = measureFsync(dir);
  const driver = await loadDriver(name);
  const info = await driver.open(file);
  const payloads = makePayloads(params.rowBytes);
  const bulkRows =
    driver.shape === 'bulk'
      ? Array.from({ length: params.units }, (_, i) => payloads[i % payloads.length]!)
      : [];

  // Warm-up, untimed: a tenth of the trial (at most 2,000 units) the same way, then a pause
  // longer than walguard's deferredFlushMs. Without it a short trial measures mostly JIT
  // compilation and the young heap's first growth: scavenges of 4-8 ms that dominated the
  // event-loop p99 of every low-load trial, whatever the peer.
  const warmup = Math.min(2000, Math.floor(params.units / 10));
  let warmupWrites = 0;
  if (warmup > 0) {
    if (driver.shape === 'bulk') {
      await driver.insertAll(bulkRows.slice(0, warmup));
      warmupWrites = warmup;
    } else {
      warmupWrites = (await runCallers(driver, { ...params, units: warmup }, payloads)).writeCount;
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  const commitsBefore = driver.commits(warmupWrites).commits;

  const profiler = await TimedSectionProfiler.start(process.env.WALGUARD_BENCH_PROFILE, name);
  const loop = monitorEventLoopDelay({ resolution: 1 });
  let writes: LatencyRecorder;
  let reads = new LatencyRecorder(0);
  let writeCount: number;
  loop.enable();
  // The histogram starts measuring at its timer's first tick: let it tick before timing.
  await new Promise((resolve) => setTimeout(resolve, 3));
  const started = performance.now();
  if (driver.shape === 'bulk') {
    writes = new LatencyRecorder(1);
    await driver.insertAll(bulkRows);
    writes.add(performance.now() - started);
    writeCount = bulkRows.length;
  } else {
    const outcome = await runCallers(driver, params, payloads);
    writes = outcome.writes;
    reads = outcome.reads;
    writeCount = outcome.writeCount;
  }
  await driver.finishTimed();
  const elapsedMs = performance.now() - started;
  await profiler?.stop();
  // A peer that never yields to the event loop (a synchronous binding behind promises that
  // resolve at once) starves the histogram's timer: let it fire once, so the block it
  // waited through is recorded.
  await new Promise((resolve) => setTimeout(resolve, 2));
  loop.disable();

  const total = driver.commits(warmupWrites + writeCount);
  const commits = total.commits - commitsBefore;
  const source = total.source;
  const notes = await driver.notes();
  await driver.close();
  // Peak RSS before the verification below loads anything more.
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  const rowsAfter = await countRows(file);
  const expected = params.preloadRows + warmupWrites + writeCount;
  if (rowsAfter !== expected) {
    throw new Error(`${name}: expected ${expected} rows after the trial, found ${rowsAfter}`);
  }
  const units = params.units;
  return {
    driver: name,
    params,
    units,
    writes: writeCount,
    elapsedMs,
    unitsPerSec: units / (elapsedMs / 1000),
    writeLatency: writes.summary(),
    readLatency: reads.summary(),
    loopDelay: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    peakRssMiB,
    commits,
    commitsPer1000: writeCount > 0 ? (commits / writeCount) * 1000 : 0,
    commitsSource: source,
    settings: info.settings,
    sqliteVersion: info.sqliteVersion,
    fsyncMs,
    rowsAfter,
    notes,
  };
}

runAsChild(main);
