/**
 * One read trial, in a process of its own:
 *
 *   node --import tsx bench/reads/trial.ts <driver> '<json ReadTrialParams>'
 *
 * `suite.ts` starts one per trial on a fresh copy of the scenario's database. The driver
 * opens it; the workload runs untimed for `warmupMs`, pauses, then runs for `durationMs`:
 * `writers` concurrent writers and `readers` concurrent read loops (or callers), each
 * awaiting its operation before it starts the next, until the window closes (operations in
 * flight then are waited for and counted; the window's length includes them). Event-loop
 * delay is measured over the window with `monitorEventLoopDelay({ resolution: 1 })`. Prints
 * one line: `RESULT_MARKER` + JSON `ReadTrialResult`.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { printResult, runAsChild } from '../child.js';
import { LatencyRecorder } from '../latency.js';
import { databaseFile, makePayloads } from '../workload.js';
import { embeddings } from './prepare.js';
import { type ReadDriver, readDriver } from './read-drivers.js';
import {
  READ_DRIVERS,
  type ReadDriverName,
  type ReadTrialParams,
  type ReadTrialResult,
} from './read-types.js';

interface WindowOutcome {
  writes: LatencyRecorder;
  reads: LatencyRecorder;
  elapsedMs: number;
}

/** Runs the scenario's workload until `ms` have passed. */
async function runWindow(
  driver: ReadDriver,
  params: ReadTrialParams,
  ms: number,
): Promise<WindowOutcome> {
  const payloads = makePayloads(200);
  const nextEmbedding = embeddings(params.dimensions, 0x9e3779b9);
  const writes = new LatencyRecorder(4096);
  const reads = new LatencyRecorder(4096);
  const started = performance.now();
  const deadline = started + ms;
  let n = 0;
  const write =
    params.scenario === 'recall'
      ? () => driver.addMemory!(`added ${n++}`, nextEmbedding())
      : () => driver.insert(payloads[n++ % payloads.length]!);
  const read =
    params.scenario === 'heavy'
      ? () => driver.heavyRead()
      : params.scenario === 'point'
        ? () => driver.pointRead(1 + ((n++ * 2654435761) % params.rows))
        : () => driver.recall!(nextEmbedding());
  const loop = async (op: () => Promise<unknown>, latencies: LatencyRecorder) => {
    while (performance.now() < deadline) {
      const t = performance.now();
      await op();
      latencies.add(performance.now() - t);
    }
  };
  await Promise.all([
    ...Array.from({ length: params.writers }, () => loop(write, writes)),
    ...Array.from({ length: params.readers }, () => loop(read, reads)),
  ]);
  return { writes, reads, elapsedMs: performance.now() - started };
}

async function main(): Promise<void> {
  const [name, json] = process.argv.slice(2);
  if (!READ_DRIVERS.includes(name as ReadDriverName) || json === undefined) {
    process.stderr.write(
      `Usage: node --import tsx bench/reads/trial.ts <${READ_DRIVERS.join('|')}> '<json params>'\n`,
    );
    process.exit(2);
  }
  const params = JSON.parse(json) as ReadTrialParams;
  const driver = readDriver(name as ReadDriverName, params.dimensions, params.readerThreads);
  await driver.open(databaseFile(params.dir));
  if (params.warmupMs > 0) {
    await runWindow(driver, params, params.warmupMs);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  // The histogram starts measuring at its timer's first tick: let it tick before timing.
  await new Promise((resolve) => setTimeout(resolve, 3));
  const outcome = await runWindow(driver, params, params.durationMs);
  // A peer that never yields starves the histogram's timer: let it fire once, so that the
  // block it waited through is recorded.
  await new Promise((resolve) => setTimeout(resolve, 2));
  loop.disable();
  const notes = driver.notes();
  await driver.close();
  const seconds = outcome.elapsedMs / 1000;
  const writes = outcome.writes.summary();
  const reads = outcome.reads.summary();
  const result: ReadTrialResult = {
    driver: name as ReadDriverName,
    params,
    elapsedMs: outcome.elapsedMs,
    writesPerSec: writes.count / seconds,
    readsPerSec: reads.count / seconds,
    writeLatency: writes,
    readLatency: reads,
    loopDelay: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    notes,
  };
  printResult(result);
}

runAsChild(main);
