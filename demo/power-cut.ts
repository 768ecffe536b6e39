/**
 * `npm run demo:power-cut`: pull the plug on a chat app, a few hundred times, and count what it
 * had promised and lost.
 *
 * The demo's chat workload (chat-workload.ts) runs twice under the power-loss recorder
 * (test/crash/: an LD_PRELOAD library that logs every write, truncate, sync, rename and unlink
 * the engine makes on the database folder, with a mark after each acknowledged message):
 * - through walguard: `synchronous=FULL`, concurrent writes group-committed;
 * - the way the seed app did it: `@libsql/client`, `synchronous=NORMAL`, each message its own
 *   transaction (naive-chat.ts);
 * the same sessions, the same turns, from the same freshly migrated database file. Each run
 * ends with SIGKILL to itself. Then, for each recording, the power is cut at `--cuts` points:
 * a crash state keeps every operation an fsync made durable before the cut, plus none, all, a
 * prefix, a random subset or a torn (512-byte sectors) subset of the later ones (replay.ts,
 * unique-plan.ts). Each state is opened with a fresh libsql connection, `integrity_check`ed,
 * and every message acknowledged before the cut is looked up (present-messages.ts).
 *
 * The write rates come from more runs of the same workload in this invocation, without the
 * recorder (it copies every byte written into its log, which slows the naive client's many
 * small commits more than walguard's batches): `--rate-runs` rounds of one run per driver, back
 * to back, each in a fresh process on a fresh copy of the database; medians and ranges printed.
 *
 *   npm run demo:power-cut -- [--cuts 300] [--seconds 2] [--sessions 8] [--rate-runs 3]
 *                             [--json] [--keep]
 *
 * Exit status: 0 when walguard kept every acknowledged message in every cut and every state
 * opened and passed `integrity_check`; 1 when it did not (a bug: please report it), or when
 * the recorder cannot be built or run here; 2 on bad arguments.
 */
import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../src/index.js';
import { type ExploreReport, exploreCrashStates } from '../test/crash/explore.js';
import { buildShim, REPO_ROOT, runTsUnderShim } from '../test/crash/recorder.js';
import { CrashReplayer } from '../test/crash/replay.js';
import { planUniqueStates } from '../test/crash/unique-plan.js';
import { intOption } from '../test/crash/workloads/options.js';
import type { PowerCutWorkloadSummary } from './power-cut-workload.js';
import { presentMessages } from './present-messages.js';
import { Progress } from './progress.js';
import { chatMigrations } from './walguard-chat.js';

const USAGE =
  'usage: npm run demo:power-cut -- [--cuts 300] [--seconds 2] [--sessions 8] [--rate-runs 3] [--json] [--keep]';
const WORKLOAD = 'demo/power-cut-workload.ts';
const DRIVERS = ['walguard', 'naive'] as const;
type Driver = (typeof DRIVERS)[number];
/** `PRAGMA synchronous` values by name. */
const LEVELS: Record<number, string> = { 0: 'OFF', 1: 'NORMAL', 2: 'FULL', 3: 'EXTRA' };
const LABEL: Record<Driver, string> = {
  walguard: 'walguard (FULL, group commit)',
  naive: 'naive @libsql/client (NORMAL)',
};

/** One side of the comparison, as `--json` prints it. */
export interface PowerCutSide {
  /** The recorded run. */
  recorded: PowerCutWorkloadSummary;
  /** The runs without the recorder the write rate comes from, in order. */
  unrecorded: PowerCutWorkloadSummary[];
  /** Acknowledged messages per second over those runs. */
  messagesPerSecond: Spread;
  /** Operations the recorder logged. */
  operations: number;
  /** Power cuts tried (distinct crash states checked). */
  cuts: number;
  /** Cuts after which at least one acknowledged message was missing. */
  cutsLosingMessages: number;
  /** Acknowledged messages missing, summed over the cuts. */
  messagesLost: number;
  /** Most acknowledged messages missing after one cut. */
  mostLostInOneCut: number;
  /** States whose database could not be opened or read. */
  failedToOpen: number;
  /** States whose database failed `PRAGMA integrity_check`. */
  failedIntegrityCheck: number;
  /** States holding a message without its conversation's `updated_at` bump (half a unit). */
  partialMessages: number;
  /** Time spent checking the states, ms. */
  checkMs: number;
}

/** Median and range of a few measurements. */
export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** What `--json` prints. */
export interface PowerCutReport {
  /** When it ran (ISO 8601). */
  date: string;
  /** Where it ran. */
  machine: {
    cpu: string;
    /** Cores Node may use. */
    cores: number;
    os: string;
    node: string;
    /** The 1-minute load average when the demo started: other work competing for the cores. */
    loadAverage: number;
  };
  /** The workload, cuts and rate runs asked for. */
  options: { cuts: number; seconds: number; sessions: number; rateRuns: number };
  walguard: PowerCutSide;
  naive: PowerCutSide;
  /** walguard's rate over the naive client's, per round of unrecorded runs. */
  walguardToNaiveRate: Spread;
  /** Wall time of the whole demo since its process started, ms. */
  elapsedMs: number;
  /** Of which: recording both runs, checking their cuts, measuring the rates; ms. */
  phasesMs: { recording: number; checking: number; rates: number };
}

const loadAtStart = os.loadavg()[0]!;
let parsed: ReturnType<typeof parseOptions>;
try {
  parsed = parseOptions();
} catch (error) {
  console.error(`${(error as Error).message}\n${USAGE}`);
  process.exit(2);
}
const { cuts, seconds, sessions, rateRuns, json, keep } = parsed;
const progress = new Progress(process.stderr);

const unavailable = recorderProblem();
if (unavailable !== undefined) {
  console.error(`power-cut demo: ${unavailable}`);
  process.exit(1);
}

const work = mkdtempSync(join(os.tmpdir(), 'walguard-power-cut-'));
let exitCode = 0;
try {
  const template = join(work, 'template', 'db.sqlite');
  await migratedDatabase(template);
  const phasesMs = { recording: 0, checking: 0, rates: 0 };
  let t0 = performance.now();
  const lap = (phase: keyof typeof phasesMs) => {
    const now = performance.now();
    phasesMs[phase] += now - t0;
    t0 = now;
  };
  const sides = {} as Record<Driver, Omit<PowerCutSide, 'unrecorded' | 'messagesPerSecond'>>;
  for (const driver of DRIVERS) {
    progress.phase(`recording ${LABEL[driver]}: ${sessions} chat sessions for ${seconds} s`);
    const dir = freshCopy(template, join(work, `recorded-${driver}`));
    const log = join(work, `${driver}.log`);
    const run = runTsUnderShim(WORKLOAD, workloadArgs(driver, dir), {
      dir,
      log,
      allowFailure: true,
    });
    if (!keep) rmSync(log); // read whole into run.ops; tens of MB
    const recorded = summaryOf(run, driver, 'recorded');
    lap('recording');
    const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: 'strict' });
    const specs = planUniqueStates(replayer, { target: cuts });
    const label = `cutting the power of ${LABEL[driver]}`;
    progress.phase(`${label}: ${specs.length} cuts`);
    const report = exploreCrashStates({
      replayer,
      specs,
      presentUnits: presentMessages,
      onProgress: (r, planned) => progress.update(`${label}: ${r.states}/${planned} cuts`),
    });
    sides[driver] = checked(recorded, run.ops.length, report);
    lap('checking');
  }
  // Rounds of one run per driver, back to back so that both see the same machine, the order
  // alternating (ABBA) so that neither always runs first.
  const unrecorded: Record<Driver, PowerCutWorkloadSummary[]> = { walguard: [], naive: [] };
  for (let round = 1; round <= rateRuns; round++) {
    for (const driver of round % 2 === 1 ? DRIVERS : [...DRIVERS].reverse()) {
      progress.phase(
        `measuring write rates without the recorder (${round}/${rateRuns}): ${LABEL[driver]}`,
      );
      const dir = freshCopy(template, join(work, `rate-${driver}-${round}`));
      const child = spawnSync(
        process.execPath,
        ['--import', 'tsx', WORKLOAD, ...workloadArgs(driver, dir)],
        { cwd: REPO_ROOT, encoding: 'utf8' },
      );
      unrecorded[driver].push(summaryOf(child, driver, 'unrecorded'));
      rmSync(dir, { recursive: true, force: true });
    }
  }
  lap('rates');
  progress.done();
  const result: PowerCutReport = {
    date: new Date().toISOString(),
    machine: machine(),
    options: { cuts, seconds, sessions, rateRuns },
    walguard: withRates(sides.walguard, unrecorded.walguard),
    naive: withRates(sides.naive, unrecorded.naive),
    walguardToNaiveRate: spread(
      unrecorded.walguard.map(
        (w, i) => w.messagesPerSecond / unrecorded.naive[i]!.messagesPerSecond,
      ),
    ),
    // performance.now() counts from the process's start: loading the modules included.
    elapsedMs: performance.now(),
    phasesMs,
  };
  const broken = promiseBroken(result.walguard);
  if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(render(result));
  if (broken !== undefined) {
    console.error(
      `power-cut demo: walguard broke its promise (${broken}). This is a bug: please report it with this output${keep ? ` and the folder ${work}` : ' (rerun with --keep to keep the recordings)'}.`,
    );
    exitCode = 1;
  }
} catch (error) {
  progress.done();
  console.error(`power-cut demo: ${(error as Error).message}`);
  exitCode = 1;
} finally {
  if (keep) console.error(`recordings kept in ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
process.exit(exitCode);

function parseOptions() {
  const { values } = parseArgs({
    options: {
      cuts: { type: 'string', default: '300' },
      seconds: { type: 'string', default: '2' },
      sessions: { type: 'string', default: '8' },
      'rate-runs': { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0 && seconds <= 60)) {
    throw new Error(`Expected \`--seconds\` to be a number in (0, 60], got \`${values.seconds}\``);
  }
  return {
    cuts: intOption(values, 'cuts', 1),
    seconds,
    sessions: intOption(values, 'sessions', 1),
    rateRuns: intOption(values, 'rate-runs', 1),
    json: values.json,
    keep: values.keep,
  };
}

/** Why the recorder cannot run here (one line), or undefined when it is built and usable. */
function recorderProblem(): string | undefined {
  if (process.platform !== 'linux') {
    return `the power-loss recorder is an LD_PRELOAD library over glibc and runs on Linux only (this is ${process.platform})`;
  }
  try {
    buildShim();
    return undefined;
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '');
    const first =
      stderr
        .split('\n')
        .map((l) => l.trim())
        .find((l) => l !== '') ?? String((error as Error).message).split('\n')[0]!;
    return `cannot build the power-loss recorder (bash scripts/build-shim.sh): ${first.replace(/^build-shim: /, '')}`;
  }
}

/** Creates the demo's schema with walguard's store migrations, then closes cleanly. */
async function migratedDatabase(path: string): Promise<void> {
  mkdirSync(join(path, '..'), { recursive: true });
  const db = await openDatabase({
    path,
    handleSignals: false,
    logger: false,
    migrations: chatMigrations(),
  });
  await db.close();
}

/** `dir` (created) holding a copy of the migrated database. */
function freshCopy(template: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  copyFileSync(template, join(dir, 'db.sqlite'));
  return dir;
}

function workloadArgs(driver: Driver, dir: string): string[] {
  return [
    '--driver',
    driver,
    '--dir',
    dir,
    '--seconds',
    String(seconds),
    '--sessions',
    String(sessions),
  ];
}

/** The summary a workload printed before killing itself; throws when it did not get there. */
function summaryOf(
  child: Pick<SpawnSyncReturns<string>, 'status' | 'stdout' | 'stderr'>,
  driver: Driver,
  how: string,
): PowerCutWorkloadSummary {
  const line = child.stdout.trim().split('\n').pop() ?? '';
  try {
    // The workload ends with SIGKILL to itself, after its summary: status null.
    if (child.status === null) return JSON.parse(line) as PowerCutWorkloadSummary;
  } catch {
    // Reported below.
  }
  throw new Error(
    `the ${how} ${driver} workload failed (exit status ${child.status}):\n${child.stderr.trim()}`,
  );
}

function checked(
  recorded: PowerCutWorkloadSummary,
  operations: number,
  report: ExploreReport,
): Omit<PowerCutSide, 'unrecorded' | 'messagesPerSecond'> {
  return {
    recorded,
    operations,
    cuts: report.states,
    cutsLosingMessages: report.lostAcked,
    messagesLost: report.lostAckedTotal,
    mostLostInOneCut: report.maxLostAcked,
    failedToOpen: report.unreadable,
    failedIntegrityCheck: report.integrityFailed,
    partialMessages: report.partialUnits,
    checkMs: report.elapsedMs,
  };
}

function withRates(
  side: Omit<PowerCutSide, 'unrecorded' | 'messagesPerSecond'>,
  runs: PowerCutWorkloadSummary[],
): PowerCutSide {
  return {
    ...side,
    unrecorded: runs,
    messagesPerSecond: spread(runs.map((r) => r.messagesPerSecond)),
  };
}

/** Median (of the middle two, for an even count), min and max. */
function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median =
    sorted.length % 2 === 1 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

/** What walguard's contract forbids and a side shows, or undefined. */
function promiseBroken(s: PowerCutSide): string | undefined {
  const found: string[] = [];
  if (s.messagesLost > 0) found.push(`${s.messagesLost} acknowledged messages lost`);
  if (s.failedToOpen > 0) found.push(`${s.failedToOpen} databases failed to open`);
  if (s.failedIntegrityCheck > 0) found.push(`${s.failedIntegrityCheck} failed integrity_check`);
  if (s.partialMessages > 0) found.push(`${s.partialMessages} held half a message unit`);
  return found.length > 0 ? found.join(', ') : undefined;
}

function machine(): PowerCutReport['machine'] {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    loadAverage: loadAtStart,
  };
}

/** The side-by-side for a person. */
function render(r: PowerCutReport): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const { walguard: w, naive: v, options: o } = r;
  const lost = (s: PowerCutSide) =>
    s.messagesLost === 0
      ? '0'
      : `${n(s.messagesLost)} in ${n(s.cutsLosingMessages)} cuts (up to ${n(s.mostLostInOneCut)} in one)`;
  const rate = (s: PowerCutSide) =>
    o.rateRuns === 1
      ? `${n(s.messagesPerSecond.median)} messages/s`
      : `${n(s.messagesPerSecond.median)} messages/s (${n(s.messagesPerSecond.min)}–${n(s.messagesPerSecond.max)})`;
  // The levels as read back from the recorded runs' connections, not as asked for.
  const level = (s: PowerCutSide) =>
    LEVELS[s.recorded.synchronous] ?? String(s.recorded.synchronous);
  const rows: [string, string, string][] = [
    ['', `walguard (${level(w)}, group commit)`, `naive @libsql/client (${level(v)})`],
    ['messages acknowledged', n(w.recorded.messages), n(v.recorded.messages)],
    ['power cuts tried', n(w.cuts), n(v.cuts)],
    ['acknowledged messages lost', lost(w), lost(v)],
    ['databases that failed to open', n(w.failedToOpen), n(v.failedToOpen)],
    ['failed integrity_check', n(w.failedIntegrityCheck), n(v.failedIntegrityCheck)],
    [o.rateRuns === 1 ? 'write rate' : `write rate, median of ${o.rateRuns}`, rate(w), rate(v)],
  ];
  const widths = [0, 1].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  const table = rows.map(([a, b, c]) =>
    `  ${a.padEnd(widths[0]!)}   ${b.padEnd(widths[1]!)}   ${c}`.trimEnd(),
  );
  const kept =
    w.messagesLost === 0
      ? `walguard kept every acknowledged message in all ${n(w.cuts)} cuts`
      : `walguard LOST acknowledged messages in ${n(w.cutsLosingMessages)} of ${n(w.cuts)} cuts`;
  const naiveLost =
    v.cutsLosingMessages > 0
      ? `the naive client lost messages it had acknowledged in ${n(v.cutsLosingMessages)} of ${n(v.cuts)} cuts`
      : 'the naive client lost nothing in these cuts either';
  const ratio = r.walguardToNaiveRate;
  const perRound = w.unrecorded.map(
    (run, i) => `${(run.messagesPerSecond / v.unrecorded[i]!.messagesPerSecond).toFixed(2)}×`,
  );
  const range = o.rateRuns === 1 ? '' : ` (median of the rounds: ${perRound.join(', ')})`;
  const speed = `walguard wrote ${ratio.median.toFixed(2)}× as many messages per second as the naive client${range}${ratio.median < 1 ? ': slower here' : ''}`;
  return [
    `Power-cut demo: the chat workload (${o.sessions} sessions, ${o.seconds} s) through each, recorded, then the power cut at ${n(o.cuts)} points of each recording`,
    '',
    ...table,
    '',
    `${kept}; ${naiveLost}.`,
    `A cut keeps what an fsync made durable before it and drops, keeps or tears each later write; every state was reopened with a fresh connection and integrity_check'ed.`,
    `Write rates: ${o.rateRuns} run${o.rateRuns === 1 ? '' : 's'} of each without the recorder, back to back; at ${o.sessions} sessions ${speed}.`,
    `Took ${(r.elapsedMs / 1000).toFixed(0)} s on ${r.machine.cpu}, ${r.machine.cores} cores (load average ${r.machine.loadAverage.toFixed(1)} at the start), Node ${r.machine.node}.`,
    '',
  ].join('\n');
}
