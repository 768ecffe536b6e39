/**
 * The read suite (issue 13): heavy reads beside writes, point reads, and recall beside
 * writes, each peer in a fresh process on a fresh copy of the scenario's database, and the
 * read targets checked within the run. `run.ts` runs it after the write matrix (a short
 * version with `--quick`) and appends its report.
 *
 * Each scenario's database is prepared once per run (`prepare.ts`) and copied for each
 * trial. Repetitions are interleaved, as in the write suite.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runChild } from '../child.js';
import { betterSqlite3Available } from '../drivers/better-sqlite3-driver.js';
import { median } from '../latency.js';
import type { MicroResult } from './micro.js';
import { copyDatabase, prepareMemories, prepareRows } from './prepare.js';
import type {
  ReadDriverName,
  ReadScenarioKind,
  ReadTrialParams,
  ReadTrialResult,
} from './read-types.js';

const readsDir = path.dirname(fileURLToPath(import.meta.url));
const trialScript = path.join(readsDir, 'trial.ts');
const microScript = path.join(readsDir, 'micro.ts');
/** Longest a read trial may take before it is killed and recorded as failed. */
const TRIAL_TIMEOUT_MS = 180_000;

/** The heavy scenario's table: 200,000 rows of 200 bytes (the issue's). */
export const HEAVY_ROWS = 200_000;
/** Writers beside the heavy reads (the issue's 64). */
export const HEAVY_WRITERS = 64;
/** Read loops of the heavy scenario (0: the writers alone, the baseline). */
export const HEAVY_LOOPS = [0, 1, 4, 16] as const;
/** The point reads' table. */
export const POINT_ROWS = 10_000;
/** Callers of the point reads: an awaited loop, and many concurrent callers. */
export const POINT_CALLERS = [1, 256] as const;
/** Memories of the recall scenario, and their dimensions. */
export const RECALL_SIZES = [10_000, 100_000] as const;
export const RECALL_DIMENSIONS = 384;
/** Writers adding memories beside the recalls, and the recall loops (0: writers alone). */
export const RECALL_WRITERS = 16;
export const RECALL_LOOPS = [0, 4] as const;

/** One read trial, repeated. */
export interface ReadScenario {
  kind: ReadScenarioKind;
  driver: ReadDriverName;
  /** Which prepared database it copies. */
  database: string;
  params: Omit<ReadTrialParams, 'dir'>;
}

/** A read scenario's outcome over its repetitions. */
export interface ReadAggregate {
  key: string;
  kind: ReadScenarioKind;
  driver: ReadDriverName;
  writers: number;
  readers: number;
  rows: number;
  reps: number;
  writesPerSec: number;
  readsPerSec: number;
  /** min–max of the figure the scenario is about (reads/s; heavy: writes/s). */
  range: [number, number];
  readP50: number;
  readP99: number;
  writeP99: number;
  loopP99: number;
  loopMax: number;
  notes: string[];
  failures: string[];
}

/** A read target and whether it is met. */
export interface ReadTarget {
  name: string;
  value: number;
  /** What it means in words (`≥ 0.5×`, `≤ 25 ms`). */
  target: string;
  met: boolean | undefined;
  unit: '×' | 'ms';
}

/** What the runner asks of the suite. */
export interface ReadSuiteOptions {
  quick: boolean;
  reps: number;
  tmpBase: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** The suite's result, for the report and the JSON file. */
export interface ReadSuiteResult {
  skipped: string[];
  /** The tinybench micro-benchmarks (full runs), or why they failed. */
  micro?: { result?: MicroResult; error?: string };
  aggregates: ReadAggregate[];
  targets: ReadTarget[];
  trials: { scenario: ReadScenario; rep: number; result?: ReadTrialResult; error?: string }[];
}

/** The scenarios of a run. */
export function buildReadPlan(quick: boolean, drivers: readonly ReadDriverName[]): ReadScenario[] {
  const has = (d: ReadDriverName) => drivers.includes(d);
  const window = quick
    ? { durationMs: 1000, warmupMs: 200, dimensions: RECALL_DIMENSIONS }
    : { durationMs: 3000, warmupMs: 500, dimensions: RECALL_DIMENSIONS };
  const out: ReadScenario[] = [];
  for (const readers of quick ? ([0, 4] as const) : HEAVY_LOOPS) {
    for (const driver of (['walguard', 'naive-client'] as const).filter(has)) {
      out.push({
        kind: 'heavy',
        driver,
        database: 'rows-200k',
        params: { ...window, scenario: 'heavy', writers: HEAVY_WRITERS, readers, rows: HEAVY_ROWS },
      });
    }
  }
  if (quick) return out;
  for (const readers of POINT_CALLERS) {
    for (const driver of (
      ['walguard', 'walguard-sync', 'better-sqlite3', 'naive-client'] as const
    ).filter(has)) {
      out.push({
        kind: 'point',
        driver,
        database: 'rows-10k',
        params: {
          ...window,
          durationMs: 2000,
          scenario: 'point',
          writers: 0,
          readers,
          rows: POINT_ROWS,
        },
      });
    }
  }
  for (const size of RECALL_SIZES) {
    for (const readers of RECALL_LOOPS) {
      for (const driver of (['walguard', 'walguard-sync'] as const).filter(has)) {
        out.push({
          kind: 'recall',
          driver,
          database: `memories-${size / 1000}k`,
          params: { ...window, scenario: 'recall', writers: RECALL_WRITERS, readers, rows: size },
        });
      }
    }
  }
  return out;
}

function keyOf(s: ReadScenario): string {
  const p = s.params;
  return `${s.kind}|${s.driver}|w${p.writers}|r${p.readers}|n${p.rows}`;
}

/** Prepares the named databases, once each, under `dir`; returns their files by name. */
async function prepareTemplates(
  names: ReadonlySet<string>,
  dir: string,
  log: (line: string) => void,
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of names) {
    const folder = path.join(dir, name);
    const started = Date.now();
    if (name === 'rows-200k') files.set(name, await prepareRows(folder, HEAVY_ROWS));
    else if (name === 'rows-10k') files.set(name, await prepareRows(folder, POINT_ROWS));
    else {
      const size = Number(name.replace(/^memories-(\d+)k$/, '$1')) * 1000;
      files.set(name, await prepareMemories(folder, size, RECALL_DIMENSIONS));
    }
    log(`bench: reads: prepared ${name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  return files;
}

/** Runs the read suite: prepares, runs every trial `reps` times (interleaved), aggregates. */
export async function runReadSuite(options: ReadSuiteOptions): Promise<ReadSuiteResult> {
  const skipped: string[] = [];
  const drivers: ReadDriverName[] = ['walguard', 'walguard-sync', 'naive-client'];
  if (betterSqlite3Available()) drivers.push('better-sqlite3');
  else skipped.push('better-sqlite3 (not installed; it is optional)');
  const plan = buildReadPlan(options.quick, drivers);
  const reps = options.quick ? 1 : options.reps;
  const templates = fs.mkdtempSync(path.join(options.tmpBase, 'read-templates-'));
  const trials: ReadSuiteResult['trials'] = [];
  let micro: ReadSuiteResult['micro'];
  try {
    const needed = new Set(plan.map((s) => s.database));
    if (!options.quick) needed.add('rows-10k'); // the micro-benchmarks' table
    const files = await prepareTemplates(needed, templates, options.log);
    const total = plan.length * reps;
    let n = 0;
    for (let rep = 1; rep <= reps; rep++) {
      for (const scenario of plan) {
        n++;
        const dir = fs.mkdtempSync(path.join(options.tmpBase, `read-${scenario.driver}-`));
        try {
          copyDatabase(files.get(scenario.database)!, dir);
          const params: ReadTrialParams = { ...scenario.params, dir };
          const outcome = await runChild<ReadTrialResult>(
            [trialScript, scenario.driver, JSON.stringify(params)],
            options.env,
            TRIAL_TIMEOUT_MS,
          );
          const record =
            'error' in outcome
              ? { scenario, rep, error: outcome.error }
              : { scenario, rep, result: outcome.value };
          trials.push(record);
          const r = record.result;
          options.log(
            `[reads ${n}/${total}] rep ${rep} ${keyOf(scenario)}: ${
              r === undefined
                ? `FAILED ${record.error}`
                : `${Math.round(r.writesPerSec)} writes/s, ${r.readsPerSec.toFixed(r.readsPerSec < 100 ? 1 : 0)} reads/s, loop p99 ${r.loopDelay.p99.toFixed(1)} max ${r.loopDelay.max.toFixed(0)} ms`
            }`,
          );
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    }
    if (!options.quick) micro = await runMicro(files.get('rows-10k')!, options);
  } finally {
    fs.rmSync(templates, { recursive: true, force: true });
  }
  const aggregates = aggregateReads(trials);
  return { skipped, micro, aggregates, targets: readTargets(aggregates), trials };
}

/** The tinybench micro-benchmarks, in a fresh process on a copy of the 10,000-row table. */
async function runMicro(
  template: string,
  options: ReadSuiteOptions,
): Promise<NonNullable<ReadSuiteResult['micro']>> {
  const dir = fs.mkdtempSync(path.join(options.tmpBase, 'read-micro-'));
  try {
    copyDatabase(template, dir);
    options.log("bench: reads: tinybench micro-benchmarks of the main thread's costs");
    const outcome = await runChild<MicroResult>([microScript, dir], options.env, TRIAL_TIMEOUT_MS);
    if ('error' in outcome) {
      options.log(`bench: reads: micro-benchmarks FAILED ${outcome.error}`);
      return { error: outcome.error };
    }
    return { result: outcome.value };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Medians per scenario, in plan order. */
export function aggregateReads(trials: ReadSuiteResult['trials']): ReadAggregate[] {
  const byKey = new Map<string, ReadSuiteResult['trials']>();
  for (const t of trials) {
    const key = keyOf(t.scenario);
    byKey.set(key, [...(byKey.get(key) ?? []), t]);
  }
  return [...byKey].map(([key, list]) => {
    const s = list[0]!.scenario;
    const ok = list.flatMap((t) => (t.result === undefined ? [] : [t.result]));
    const med = (f: (r: ReadTrialResult) => number) => median(ok.map(f));
    const main = (r: ReadTrialResult) => (s.kind === 'heavy' ? r.writesPerSec : r.readsPerSec);
    return {
      key,
      kind: s.kind,
      driver: s.driver,
      writers: s.params.writers,
      readers: s.params.readers,
      rows: s.params.rows,
      reps: ok.length,
      writesPerSec: med((r) => r.writesPerSec),
      readsPerSec: med((r) => r.readsPerSec),
      range: [Math.min(...ok.map(main)), Math.max(...ok.map(main))],
      readP50: med((r) => r.readLatency.p50),
      readP99: med((r) => r.readLatency.p99),
      writeP99: med((r) => r.writeLatency.p99),
      loopP99: med((r) => r.loopDelay.p99),
      loopMax: med((r) => r.loopDelay.max),
      notes: ok[0]?.notes ?? [],
      failures: list.flatMap((t) => (t.error === undefined ? [] : [t.error])),
    };
  });
}

function find(
  aggregates: readonly ReadAggregate[],
  kind: ReadScenarioKind,
  driver: ReadDriverName,
  readers: number,
  rows?: number,
): ReadAggregate | undefined {
  return aggregates.find(
    (a) =>
      a.kind === kind &&
      a.driver === driver &&
      a.readers === readers &&
      a.reps > 0 &&
      (rows === undefined || a.rows === rows),
  );
}

/**
 * The issue's read targets: with 4 heavy read loops, walguard's writes keep >= 50% of their
 * rate alone and no event-loop stall passes 25 ms; point reads reach >= 0.7× the
 * synchronous reader's awaited-loop rate, and beat it at 256 callers.
 */
export function readTargets(aggregates: readonly ReadAggregate[]): ReadTarget[] {
  const out: ReadTarget[] = [];
  const alone = find(aggregates, 'heavy', 'walguard', 0);
  const four = find(aggregates, 'heavy', 'walguard', 4);
  if (alone !== undefined && four !== undefined) {
    const kept = four.writesPerSec / alone.writesPerSec;
    out.push({
      name: 'walguard writes with 4 heavy read loops / writes alone',
      value: kept,
      target: '≥ 0.5×',
      met: kept >= 0.5,
      unit: '×',
    });
    out.push({
      name: 'walguard longest event-loop stall with 4 heavy read loops',
      value: four.loopMax,
      target: '≤ 25 ms',
      met: four.loopMax <= 25,
      unit: 'ms',
    });
  }
  for (const [callers, goal, op] of [
    [1, 0.7, '≥'],
    [256, 1, '>'],
  ] as const) {
    const wg = find(aggregates, 'point', 'walguard', callers);
    const sync = find(aggregates, 'point', 'walguard-sync', callers);
    if (wg === undefined || sync === undefined) continue;
    const value = wg.readsPerSec / sync.readsPerSec;
    out.push({
      name: `walguard point reads / synchronous reads (walguard-sync), ${callers === 1 ? 'awaited loop' : `${callers} callers`}`,
      value,
      target: `${op} ${goal}×`,
      met: op === '≥' ? value >= goal : value > goal,
      unit: '×',
    });
  }
  return out;
}
