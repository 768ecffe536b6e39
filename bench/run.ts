/**
 * The benchmark runner.
 *
 *   node --import tsx bench/run.ts [--quick] [--slow-disk] [options]
 *
 *   --quick              the headline only (256 callers, 200-byte rows, FULL): under a minute
 *   --slow-disk          every fsync in the trial folder takes --fsync-delay-us longer, through
 *                        the LD_PRELOAD shim test/crash/build/walrec.so (built by
 *                        scripts/build-shim.sh when missing)
 *   --fsync-delay-us N   the slow-disk delay (default 5000 µs, a laptop SSD flush)
 *   --reps N             repetitions of each trial (default 3)
 *   --only a,b           only these drivers; `memory` names the memory scenario (`--only memory`
 *                        runs it alone, saved as <date>-memory[-slow-disk]), `reads` the read
 *                        suite (`--only reads`: saved as <date>-reads)
 *   --label NAME         the results' file name label (default quick|full[-slow-disk])
 *   --check              exit 1 when a headline target is missed (a failed trial always does)
 *   --no-save            print the report without writing bench/results/
 *   --render FILE.json   rewrite FILE.md from a saved run's figures (after a report change)
 *
 * Each trial runs in a fresh child process (`bench/trial.ts`) on a fresh database in its own
 * folder under bench/results/tmp/ (on the repository's disk: a tmpfs would make fsync free).
 * Repetitions are interleaved (every scenario once, then again), so that drift in the
 * machine's load spreads over all peers. The report is printed and written, with the raw
 * results, to bench/results/<date>-<label>.md and .json, and a full run's chart (rows/s against
 * callers, `bench/chart.ts`) to <date>-<label>.svg. After the write trials comes the read suite
 * (`bench/reads/suite.ts`: heavy reads beside writes, point reads, recall, and tinybench
 * micro-benchmarks; `--quick` runs its heavy-read trials only, once each; not on the slow
 * disk). A full run ends with the memory scenario (`bench/memory.ts`): 1,000,000 deferred 1 KiB
 * units in a fresh process, peak RSS against a bound.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type Aggregate, aggregate, headlineRatios, type TrialRecord } from './aggregate.js';
import { writeChart } from './chart.js';
import { runChild } from './child.js';
import { betterSqlite3Available, betterSqlite3Version } from './drivers/better-sqlite3-driver.js';
import { MEMORY, type MemoryResult, renderMemory, renderMemoryHeader } from './memory.js';
import { buildPlan, type Scenario } from './plan.js';
import { renderReads } from './reads/report.js';
import { type ReadSuiteResult, runReadSuite } from './reads/suite.js';
import { type RunMeta, renderReport } from './report.js';
import {
  DRIVER_NAMES,
  type DriverName,
  type TrialParams,
  type TrialResult,
} from './trial-types.js';
import { countRows, databaseFile, prepareDatabase } from './workload.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const trialScript = path.join(benchDir, 'trial.ts');
const memoryScript = path.join(benchDir, 'memory-trial.ts');
const shimPath = path.join(root, 'test', 'crash', 'build', 'walrec.so');
const buildShimScript = path.join(root, 'scripts', 'build-shim.sh');
/** Longest a trial may take before it is killed and recorded as failed. */
const TRIAL_TIMEOUT_MS = 120_000;
/** Longest the memory trial (1,000,000 units) may take. */
const MEMORY_TIMEOUT_MS = 900_000;

interface Args {
  quick: boolean;
  slowDisk: boolean;
  fsyncDelayUs: number;
  reps: number;
  only: DriverName[] | undefined;
  /** Run the memory scenario: a full run, or `--only` naming `memory`. */
  memory: boolean;
  /** Run the read suite: any run on the disk as it is, or `--only` naming `reads`. */
  reads: boolean;
  label: string | undefined;
  check: boolean;
  save: boolean;
  render: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    quick: false,
    slowDisk: false,
    fsyncDelayUs: 5000,
    reps: 3,
    only: undefined,
    memory: false,
    reads: false,
    label: undefined,
    check: false,
    save: true,
    render: undefined,
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined) fail(`${flag} needs a value`);
    return v;
  };
  const integer = (text: string, flag: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min)
      fail(`Expected ${flag} to be an integer >= ${min}, got \`${text}\``);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    switch (flag) {
      case '--quick':
        args.quick = true;
        break;
      case '--slow-disk':
        args.slowDisk = true;
        break;
      case '--fsync-delay-us':
        args.fsyncDelayUs = integer(value(i++, flag), flag, 1);
        break;
      case '--reps':
        args.reps = integer(value(i++, flag), flag, 1);
        break;
      case '--only': {
        const listed = value(i++, flag).split(',');
        const names = listed.filter((n) => n !== 'memory' && n !== 'reads');
        args.memory = listed.includes('memory');
        args.reads = listed.includes('reads');
        for (const n of names) {
          if (!DRIVER_NAMES.includes(n as DriverName)) {
            fail(
              `Unknown driver \`${n}\` in --only; known: ${DRIVER_NAMES.join(', ')}, memory, reads`,
            );
          }
        }
        args.only = names as DriverName[];
        break;
      }
      case '--label':
        args.label = value(i++, flag);
        break;
      case '--check':
        args.check = true;
        break;
      case '--no-save':
        args.save = false;
        break;
      case '--render':
        args.render = value(i++, flag);
        break;
      default:
        fail(`Unknown option \`${flag}\` (see the header of bench/run.ts)`);
    }
  }
  if (args.only === undefined) {
    args.memory = !args.quick;
    args.reads = !args.slowDisk;
  }
  return args;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** The slow-disk shim, built when missing; exits when it cannot be had. */
function ensureShim(): string {
  if (!fs.existsSync(shimPath) && fs.existsSync(buildShimScript)) {
    log(`bench: building the slow-disk shim with ${path.relative(root, buildShimScript)}`);
    spawnSync('bash', [buildShimScript], { cwd: root, stdio: 'inherit' });
  }
  if (!fs.existsSync(shimPath)) {
    fail(
      `--slow-disk needs the LD_PRELOAD shim ${path.relative(root, shimPath)}; build it with \`bash scripts/build-shim.sh\``,
    );
  }
  return shimPath;
}

/** The commit measured, with `+dirty` when src/ has uncommitted changes. */
function sourceRevision(): string {
  const git = (...a: string[]) =>
    spawnSync('git', a, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD') || '?';
  return git('status', '--porcelain', '--', 'src') === '' ? head : `${head}+dirty`;
}

function packageVersion(dir: string): string {
  try {
    return (
      JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }
    ).version;
  } catch {
    return '?';
  }
}

/** The child's environment: the slow-disk shim when asked, and no stray shim settings. */
function childEnv(dir: string, args: Args, shim: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('WALREC_')) delete env[key];
  delete env.LD_PRELOAD;
  if (shim !== undefined) {
    env.LD_PRELOAD = shim;
    env.WALREC_DIR = dir;
    env.WALREC_FSYNC_DELAY_US = String(args.fsyncDelayUs);
  }
  return env;
}

/** Runs one trial in a fresh process on a fresh database. */
async function runTrial(
  scenario: Scenario,
  args: Args,
  shim: string | undefined,
  tmpBase: string,
): Promise<{ result?: TrialResult; error?: string; wallMs: number }> {
  const started = performance.now();
  const dir = fs.mkdtempSync(path.join(tmpBase, `${scenario.driver}-`));
  try {
    const params: TrialParams = { ...scenario.params, dir };
    await prepareDatabase(dir, params);
    const outcome = await runChild<TrialResult>(
      [trialScript, scenario.driver, JSON.stringify(params)],
      childEnv(dir, args, shim),
      TRIAL_TIMEOUT_MS,
    );
    const wallMs = performance.now() - started;
    return 'error' in outcome
      ? { error: outcome.error, wallMs }
      : { result: outcome.value, wallMs };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The memory scenario (`bench/memory.ts`): 1,000,000 deferred 1 KiB units in a fresh process
 * on a fresh database, then the rows counted here by a fresh `libsql` connection.
 */
async function runMemory(
  args: Args,
  shim: string | undefined,
  tmpBase: string,
): Promise<{ result?: MemoryResult; error?: string }> {
  const dir = fs.mkdtempSync(path.join(tmpBase, 'memory-'));
  try {
    await prepareDatabase(dir, {
      units: MEMORY.units,
      callers: 1,
      rowBytes: MEMORY.rowBytes,
      readRatio: 0,
      preloadRows: 0,
    });
    const outcome = await runChild<MemoryResult>(
      [memoryScript, dir],
      childEnv(dir, args, shim),
      MEMORY_TIMEOUT_MS,
    );
    if ('error' in outcome) return outcome;
    const result = outcome.value;
    result.rowsAfter = await countRows(databaseFile(dir));
    result.ok = result.peakRssMiB <= MEMORY.boundMiB && result.rowsAfter === result.units;
    return { result };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function describe(s: Scenario): string {
  const p = s.params;
  const mix = p.readRatio > 0 ? ` ${Math.round(p.readRatio * 100)}%r` : '';
  return `${s.group} ${s.driver} c${p.callers} ${p.rowBytes}B${mix}`;
}

/** Rewrites the markdown of a saved run from its JSON (same figures, current report code). */
function render(file: string): void {
  const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    meta: RunMeta;
    aggregates: Aggregate[];
  };
  const ratios = headlineRatios(saved.aggregates, saved.meta.profile.slowDisk);
  const markdown = renderReport(saved.meta, saved.aggregates, ratios);
  fs.writeFileSync(file.replace(/\.json$/, '.md'), `${markdown}\n`);
  process.stdout.write(`${markdown}\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  if (args.render !== undefined) {
    render(args.render);
    return;
  }
  const runStarted = performance.now();
  const date = new Date();
  const revision = sourceRevision();

  const skipped: string[] = [];
  let drivers: DriverName[] = [...(args.only ?? DRIVER_NAMES)];
  if (drivers.includes('better-sqlite3-tx') && !betterSqlite3Available()) {
    drivers = drivers.filter((d) => d !== 'better-sqlite3-tx');
    skipped.push(
      'better-sqlite3-tx (better-sqlite3 is not installed: `npm run bench` or `npm run bench:peers` installs it into bench/peers/)',
    );
  }
  const shim = args.slowDisk ? ensureShim() : undefined;
  const fsyncDelayUs = args.slowDisk ? args.fsyncDelayUs : 0;
  const plan = buildPlan({ quick: args.quick, fsyncDelayUs }, drivers);
  const memoryOnly = plan.length === 0 && args.memory && !args.reads;
  const readsOnly = plan.length === 0 && args.reads && !args.memory;
  const label =
    args.label ??
    `${memoryOnly ? 'memory' : readsOnly ? 'reads' : args.quick ? 'quick' : 'full'}${args.slowDisk ? '-slow-disk' : ''}`;

  const tmpBase = path.join(benchDir, 'results', 'tmp');
  fs.mkdirSync(tmpBase, { recursive: true });
  const total = plan.length * args.reps;
  log(`bench: ${label}: ${plan.length} scenarios × ${args.reps} repetitions = ${total} trials`);

  const records: TrialRecord[] = [];
  let n = 0;
  for (let rep = 1; rep <= args.reps; rep++) {
    for (const scenario of plan) {
      n++;
      const outcome = await runTrial(scenario, args, shim, tmpBase);
      records.push({ scenario, rep, ...outcome });
      const r = outcome.result;
      const summary =
        r === undefined
          ? `FAILED ${outcome.error}`
          : `${Math.round(r.unitsPerSec)} units/s, ack p50 ${r.writeLatency.p50.toFixed(2)} p99 ${r.writeLatency.p99.toFixed(2)} ms, loop p99 ${r.loopDelay.p99.toFixed(1)} ms`;
      log(
        `[${n}/${total}] rep ${rep} ${describe(scenario)}: ${summary} (${(outcome.wallMs / 1000).toFixed(1)} s)`,
      );
    }
  }
  let reads: ReadSuiteResult | undefined;
  if (args.reads) {
    log('bench: reads: the read suite (issue 13)');
    reads = await runReadSuite({
      quick: args.quick,
      reps: args.reps,
      tmpBase,
      env: childEnv(tmpBase, args, undefined),
      log,
    });
  }
  let memory: { result?: MemoryResult; error?: string } | undefined;
  if (args.memory) {
    log(`bench: memory: ${MEMORY.units} deferred ${MEMORY.rowBytes}-byte units in a fresh process`);
    memory = await runMemory(args, shim, tmpBase);
    const m = memory.result;
    log(
      m === undefined
        ? `bench: memory: FAILED ${memory.error}`
        : `bench: memory: peak RSS ${m.peakRssMiB.toFixed(0)} MiB (bound ${MEMORY.boundMiB}), ${Math.round(m.unitsPerSec)} units/s, ${m.rowsAfter} rows after`,
    );
  }
  try {
    fs.rmdirSync(tmpBase);
  } catch {
    // Not empty (a concurrent run) or already gone: leave it.
  }

  const aggregates = aggregate(records);
  const ratios = headlineRatios(aggregates, args.slowDisk);
  const sqlite: RunMeta['sqlite'] = {};
  for (const r of records) if (r.result) sqlite[r.result.driver] ??= r.result.sqliteVersion;
  const versions: Record<string, string> = {
    walguard: `${packageVersion(root)} (${revision})`,
    kysely: packageVersion(path.join(root, 'node_modules', 'kysely')),
    libsql: packageVersion(path.join(root, 'node_modules', 'libsql')),
    '@libsql/client': packageVersion(path.join(root, 'node_modules', '@libsql', 'client')),
  };
  const bsq = betterSqlite3Version();
  if (bsq !== undefined && drivers.includes('better-sqlite3-tx')) versions['better-sqlite3'] = bsq;
  const cpus = os.cpus();
  const meta: RunMeta = {
    date: date.toISOString(),
    label,
    command: `node --import tsx bench/run.ts${argv.length > 0 ? ` ${argv.join(' ')}` : ''}`,
    machine: {
      cpu: cpus[0]?.model.trim() ?? '?',
      cores: cpus.length,
      memoryGiB: os.totalmem() / 1024 ** 3,
      os: `${os.type()} ${os.release()}`,
    },
    node: process.version,
    versions,
    sqlite,
    profile: {
      slowDisk: args.slowDisk,
      fsyncDelayUs,
      ...(shim === undefined ? {} : { shim: path.relative(root, shim) }),
    },
    reps: args.reps,
    skipped,
    totalSeconds: (performance.now() - runStarted) / 1000,
  };
  let markdown =
    plan.length === 0 ? renderMemoryHeader(meta) : renderReport(meta, aggregates, ratios);
  if (reads !== undefined) markdown = `${markdown.trimEnd()}\n\n${renderReads(reads)}`;
  if (memory !== undefined) {
    const section =
      memory.result === undefined
        ? `## Memory\n\nThe memory trial failed: ${memory.error}`
        : renderMemory(memory.result, 'node --import tsx bench/memory-trial.ts <folder>');
    markdown = `${markdown.trimEnd()}\n\n${section}`;
  }
  process.stdout.write(`${markdown}\n`);
  if (args.save) {
    const base = path.join(benchDir, 'results', `${date.toISOString().slice(0, 10)}-${label}`);
    fs.writeFileSync(`${base}.md`, `${markdown}\n`);
    fs.writeFileSync(
      `${base}.json`,
      `${JSON.stringify({ meta, ratios, aggregates, trials: records, ...(reads === undefined ? {} : { reads }), ...(memory === undefined ? {} : { memory }) }, null, 2)}\n`,
    );
    log(`bench: wrote ${path.relative(root, base)}.md and .json`);
    if (!args.quick && plan.length > 0) {
      const chart = await writeChart(`${base}.json`);
      if (chart !== undefined) log(`bench: wrote ${path.relative(root, chart)}`);
    }
  }
  const failed =
    records.some((r) => r.error !== undefined) ||
    (reads?.trials.some((t) => t.error !== undefined) ?? false) ||
    (memory !== undefined && memory.result?.ok !== true);
  const missed = ratios.some((r) => r.met === false);
  if (failed) log('bench: some trials failed (see the report)');
  process.exitCode = failed || (args.check && missed) ? 1 : 0;
}

await main();
