/**
 * The full power-loss exploration (`npm run crash`): every walguard crash workload recorded
 * at full scale under the shim, at least `--states` distinct crash states of each checked
 * (in parallel child processes: libsql leaks memory and descriptors per checked state), the
 * backups the backup workload took checked, and `--kills` kill -9 runs of the mixed
 * kill-writer. Prints one table (markdown) and writes the results as JSON.
 *
 * Run: node --import tsx test/crash/run-full.ts [options]
 *   --states N   distinct crash states per workload [10000]
 *   --kills N    kill -9 runs [200]
 *   --jobs N     exploration processes at once [2]
 *   --slice N    crash states per exploration process [2500]
 *   --only LIST  comma-separated workload names (and/or `kill-9`) [all]
 *   --work DIR   working folder [<tmpdir>/walguard-crash-full-<time>]
 *   --keep       keep the working folder (logs, databases) instead of removing it
 *   --out FILE   JSON results [.tmp/crash-full.json]
 *
 * Recovery rows (issue 10; recovery-states.ts): every crash state of a restore (plaintext and
 * encrypted, strict and ext4-like) and of a new database's first open (plaintext and
 * encrypted), each state checked as the next open would see it; and the WAL inspector over
 * every state of two deferred-heavy logs, which must take no torn tail for damage. Names:
 * `restore`, `restore-encrypted`, `first-open`, `first-open-encrypted`, `wal-inspector`.
 * In those rows "lost acknowledged" counts failing states (the old or the restored database
 * not whole, an acknowledged unit missing), "unreadable" states with no database at the path
 * or that do not reopen (for the inspector: false alarms, which would refuse the open).
 *
 * Exit status 0 when every row is as expected: no failing state for the workloads the
 * contract covers, lost acknowledged units for the NORMAL control, 0 losses for kill -9.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { ExploreReport } from './explore.js';
import { runKillLoop } from './kill-loop.js';
import type { Op } from './oplog.js';
import { buildShim, REPO_ROOT, runTsForJson } from './recorder.js';
import {
  exploreRecoveryInChildren,
  inspectWalStates,
  RECOVERY_KEY,
  type RecoveryReport,
  type RecoveryRun,
  recordFirstOpen,
  recordRestore,
  type WalInspectorReport,
} from './recovery-states.js';
import { CrashReplayer, type CrashStateSpec, type DurabilityModel } from './replay.js';
import { planUniqueStates } from './unique-plan.js';
import {
  checkBackups,
  firstFault,
  recordWalguard,
  WALGUARD_WORKLOADS,
  type WalguardRun,
  type WalguardWorkload,
} from './walguard-workloads.js';

const { values } = parseArgs({
  options: {
    states: { type: 'string', default: '10000' },
    kills: { type: 'string', default: '200' },
    jobs: { type: 'string', default: '2' },
    slice: { type: 'string', default: '2500' },
    only: { type: 'string' },
    work: { type: 'string' },
    keep: { type: 'boolean', default: false },
    out: { type: 'string', default: join(REPO_ROOT, '.tmp', 'crash-full.json') },
  },
});

const int = (name: 'states' | 'kills' | 'jobs' | 'slice', min: number): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`Expected \`--${name}\` to be an integer >= ${min}, got \`${values[name]}\``);
  }
  return n;
};
const targetStates = int('states', 1);
const kills = int('kills', 0);
const jobs = int('jobs', 1);
const sliceSize = int('slice', 100);
const only = values.only?.split(',').map((s) => s.trim());
const selected = (name: string) => only === undefined || only.includes(name);

/** One exploration of one recorded run: a row of the table. */
interface Exploration {
  /** Workload name. */
  workload: WalguardWorkload;
  /** Replay model. */
  model: DurabilityModel;
  /** Distinct states to check. */
  states: number;
}

/** Extra rows: the same logs under the ext4-like model (names durable in order with any fsync). */
const EXT4_ROWS: readonly { name: string; states: number }[] = [
  { name: 'concurrent-critical', states: 3000 },
  { name: 'checkpoints', states: 3000 },
];

/** A row of the result table. */
interface Row {
  workload: string;
  mode: string;
  states: number;
  lostAcked: number;
  partialUnits: number;
  integrityFailures: number;
  unreadable: number;
  outOfOrder: number;
  rejectedPresent: number;
  expected: string;
  ok: boolean;
  seconds: number;
  notes: string;
  failures: string[];
}

const started = performance.now();
const stamp = () => {
  const s = Math.round((performance.now() - started) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};
const log = (msg: string) => process.stderr.write(`[${stamp()}] ${msg}\n`);

const work = values.work
  ? resolve(values.work)
  : mkdtempSync(join(os.tmpdir(), 'walguard-crash-full-'));
mkdirSync(work, { recursive: true });

/** Crash points of a fault workload: every op around the failure, the sync points after it. */
function faultPoints(run: WalguardRun): number[] {
  const at = firstFault(run);
  if (at === undefined) throw new Error(`${run.workload.name}: no fault was injected`);
  const ops: readonly Op[] = run.ops;
  let lastReject = at;
  ops.forEach((op, i) => {
    if (op.kind === 'mark' && op.text.startsWith('reject ')) lastReject = i;
  });
  const points = new Set<number>();
  for (let k = at; k <= Math.min(ops.length, lastReject + 300); k++) points.add(k);
  for (let i = at; i < ops.length; i++) {
    const op = ops[i]!;
    if (op.kind === 'fsync') points.add(i).add(i + 1);
    else if (op.kind === 'mark') points.add(i + 1);
  }
  points.add(ops.length);
  return [...points].sort((a, b) => a - b);
}

/** What the run itself showed (faults, rejections, backups), for the notes column. */
function runNotes(run: WalguardRun): { notes: string; ok: boolean; problems: string[] } {
  const { summary } = run;
  const notes: string[] = [
    `${summary.acked} acked, ${summary.deferred} deferred, ${summary.commits} commits`,
  ];
  const problems: string[] = [];
  const unplanned = summary.rejected.filter((r) => !r.planned);
  if (run.workload.shim !== undefined) {
    const codes = [...new Set(unplanned.map((r) => r.code))].join('/');
    notes.push(
      `${unplanned.length} units rejected ${codes} in ${summary.failedBatches.length} batch(es)`,
    );
    if (summary.failedBatches.length === 0) problems.push('no batch failed');
  } else if (unplanned.length > 0) {
    problems.push(
      `unplanned rejections: ${unplanned
        .slice(0, 3)
        .map((r) => `${r.id} ${r.code}`)
        .join(', ')}`,
    );
  }
  if (run.backupDir !== undefined) {
    const checks = checkBackups(run);
    const bad = checks.filter((c) => !c.result.ok);
    notes.push(`${checks.length} backups checked, ${bad.length} bad`);
    for (const b of bad) problems.push(`backup ${b.path}: ${b.result.problems.join('; ')}`);
    if (checks.length === 0) problems.push('no backup was taken');
  }
  return { notes: notes.join('; '), ok: problems.length === 0, problems };
}

/** Runs explore-cli.ts on one slice of specs; resolves with its report. */
function exploreSlice(args: string[]): Promise<ExploreReport> {
  return runTsForJson<ExploreReport>('test/crash/explore-cli.ts', args);
}

/** Runs `tasks` with at most `limit` at once. */
async function pool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

const describeFailure = (f: ExploreReport['failures'][number]) =>
  `K=${f.point} ${f.subset.kind} (${f.appliedCount}/${f.pendingCount} pending applied): ${f.result.problems.join(' | ')}`;

// ---- record ---------------------------------------------------------------------------------

buildShim();
log(`working folder ${work}`);
const runs = new Map<string, WalguardRun>();
const runChecks = new Map<string, ReturnType<typeof runNotes>>();
for (const workload of WALGUARD_WORKLOADS) {
  if (!selected(workload.name)) continue;
  const run = await recordWalguard(workload, { root: work, scale: 'full' });
  runs.set(workload.name, run);
  runChecks.set(workload.name, runNotes(run));
  log(`recorded ${workload.name}: ${run.ops.length} ops; ${runChecks.get(workload.name)!.notes}`);
}

// ---- plan -----------------------------------------------------------------------------------

const explorations: Exploration[] = [];
for (const [name, run] of runs) {
  const states = Math.min(run.workload.fullStates ?? targetStates, targetStates);
  explorations.push({ workload: run.workload, model: 'strict', states });
  const ext4 = EXT4_ROWS.find((r) => r.name === name);
  if (ext4 !== undefined) {
    explorations.push({
      workload: run.workload,
      model: 'ext4-like',
      states: Math.min(ext4.states, targetStates),
    });
  }
  if (run.workload.failedSync === 'drop') {
    // The same log with failed writes kept pending: what the other EIO row models.
    explorations.push({
      workload: { ...run.workload, failedSync: 'retry' },
      model: 'strict',
      states,
    });
  }
}

interface Slice {
  exploration: number;
  args: string[];
}
const slices: Slice[] = [];
const planned: number[] = [];
explorations.forEach((e, index) => {
  const run = runs.get(e.workload.name)!;
  const replayer = new CrashReplayer(run.ops, {
    snapshot: run.snapshot,
    model: e.model,
    failedSync: e.workload.failedSync ?? 'retry',
  });
  const specs: CrashStateSpec[] = planUniqueStates(replayer, {
    target: e.states,
    // Every op is a crash point: a crash in the middle of a batch's WAL writes too.
    points: e.workload.fromFault ? faultPoints(run) : 'every',
    maxRandomPerPoint: 6,
  });
  planned[index] = specs.length;
  const count = Math.ceil(specs.length / sliceSize);
  for (let i = 0; i < count; i++) {
    const file = join(
      work,
      `${e.workload.name}-${e.model}-${e.workload.failedSync ?? 'retry'}-${i}.json`,
    );
    writeFileSync(file, JSON.stringify(specs.slice(i * sliceSize, (i + 1) * sliceSize)));
    const args = ['--log', run.log, '--specs', file, '--model', e.model];
    if (run.encryptionKey !== undefined) args.push('--key', run.encryptionKey);
    if (e.workload.failedSync !== undefined) args.push('--failed-sync', e.workload.failedSync);
    slices.push({ exploration: index, args });
  }
  log(`planned ${specs.length} states of ${e.workload.name} (${e.model}) in ${count} slice(s)`);
});

// ---- explore, and kill -9 meanwhile ---------------------------------------------------------

let done = 0;
const explored = pool(
  slices.map((slice) => async () => {
    const report = await exploreSlice(slice.args);
    done++;
    const e = explorations[slice.exploration]!;
    log(
      `explored slice ${done}/${slices.length} (${e.workload.name}, ${e.model}): ${report.states} states, ` +
        `${report.states - report.ok} failing, ${Math.round(report.statesPerSecond)} states/s`,
    );
    return report;
  }),
  jobs,
);
const killed =
  kills > 0 && selected('kill-9')
    ? runKillLoop({
        kills,
        dir: join(work, 'kill-9'),
        onKill: (kill, check) => {
          if (kill % 20 === 0 || check.lost.length > 0 || check.integrity.join() !== 'ok') {
            log(
              `kill ${kill}/${kills}: ${check.acked} acked, lost ${check.lost.length}, integrity ${check.integrity[0]}`,
            );
          }
        },
      })
    : undefined;
const reports = await explored;
const killReport = await killed;

// ---- recovery paths (issue 10) --------------------------------------------------------------

/** A recovery row: a recorded run, a replay model, a plan. */
interface RecoveryRow {
  name: string;
  run: () => RecoveryRun;
  model: DurabilityModel;
  states: number;
}
const RECOVERY_ROWS: readonly RecoveryRow[] = [
  {
    name: 'restore',
    run: () => recordRestore(work, { units: 120, backupAt: 40 }),
    model: 'strict',
    states: 2000,
  },
  {
    name: 'restore',
    run: () => recordRestore(work, { units: 120, backupAt: 40, tag: 'restore-ext4' }),
    model: 'ext4-like',
    states: 1000,
  },
  {
    name: 'restore-encrypted',
    run: () => recordRestore(work, { units: 80, backupAt: 30, key: RECOVERY_KEY }),
    model: 'strict',
    states: 1000,
  },
  {
    name: 'first-open',
    run: () => recordFirstOpen(work, { units: 6 }),
    model: 'strict',
    states: 1000,
  },
  {
    name: 'first-open-encrypted',
    run: () => recordFirstOpen(work, { units: 4, key: RECOVERY_KEY }),
    model: 'strict',
    states: 500,
  },
];
const recoveryRows: { row: RecoveryRow; report: RecoveryReport; ops: number }[] = [];
for (const row of RECOVERY_ROWS) {
  if (!selected(row.name)) continue;
  const run = row.run();
  const replayer = new CrashReplayer(run.ops, { snapshot: run.snapshot, model: row.model });
  const specs = planUniqueStates(replayer, {
    target: Math.min(row.states, targetStates),
    points: 'every',
    maxRandomPerPoint: 6,
  });
  log(
    `recorded ${row.name} (${run.ops.length} ops); checking ${specs.length} states (${row.model})`,
  );
  const report = await exploreRecoveryInChildren(run, specs, {
    work: join(work, `${row.name}-${row.model}-check`),
    jobs,
    model: row.model,
  });
  log(`checked ${row.name} (${row.model}): ${report.ok}/${report.states} ok`);
  recoveryRows.push({ row, report, ops: run.ops.length });
}

/** The WAL inspector over every state of the deferred-heavy logs: false alarms. */
const inspectorRuns = ['mixed-deferred', 'eio-fsync-deferred'].filter((n) => runs.has(n));
let inspector: (WalInspectorReport & { seconds: number }) | undefined;
if (selected('wal-inspector') && inspectorRuns.length > 0) {
  const t0 = performance.now();
  inspector = { states: 0, flagged: 0, withFrames: 0, flaggedByControl: 0, seconds: 0 };
  for (const name of inspectorRuns) {
    const run = runs.get(name)!;
    const replayer = new CrashReplayer(run.ops, {
      snapshot: run.snapshot,
      failedSync: run.workload.failedSync ?? 'retry',
    });
    const specs = planUniqueStates(replayer, { target: targetStates, points: 'every' });
    const report = await inspectWalStates(replayer, specs, { walFile: 'db.sqlite-wal' });
    inspector.states += report.states;
    inspector.withFrames += report.withFrames;
    inspector.flagged += report.flagged;
  }
  inspector.seconds = Math.round((performance.now() - t0) / 1000);
  log(`WAL inspector: ${inspector.flagged} of ${inspector.states} states flagged`);
}

// ---- table ----------------------------------------------------------------------------------

const rows: Row[] = explorations.map((e, index) => {
  const parts = reports.filter((_, i) => slices[i]!.exploration === index);
  const sum = (key: keyof ExploreReport) => parts.reduce((n, r) => n + (r[key] as number), 0);
  const run = runChecks.get(e.workload.name)!;
  const failing = sum('states') - sum('ok');
  const holds = e.workload.expect === 'holds';
  const ok = holds ? failing === 0 && run.ok : sum('lostAcked') > 0 && sum('corrupt') === 0;
  const failures = parts.flatMap((r) => r.failures.slice(0, 3).map(describeFailure)).slice(0, 5);
  return {
    workload: e.workload.name,
    mode:
      `${e.workload.sync} · ${e.model}` +
      (e.workload.failedSync === 'drop' ? ' · failed fsync loses writes' : ''),
    states: sum('states'),
    lostAcked: sum('lostAcked'),
    partialUnits: sum('partialUnits'),
    integrityFailures: sum('integrityFailed'),
    unreadable: sum('unreadable'),
    outOfOrder: sum('outOfOrder'),
    rejectedPresent: sum('rejectedPresent'),
    expected: holds ? 'no failing state' : 'lost acknowledged units (control)',
    ok: ok && sum('states') >= Math.min(e.states, planned[index]!),
    seconds: Math.round(sum('elapsedMs') / 1000),
    notes: run.notes + (run.problems.length > 0 ? `; PROBLEMS: ${run.problems.join('; ')}` : ''),
    failures,
  };
});
if (killReport !== undefined) {
  rows.push({
    workload: 'kill-9 (kill-writer.ts)',
    mode: 'FULL · kill -9',
    states: killReport.kills,
    lostAcked: killReport.killsLosingAcked,
    partialUnits: killReport.killsWithPartial,
    integrityFailures: killReport.integrityFailures,
    unreadable: 0,
    outOfOrder: 0,
    rejectedPresent: 0,
    expected: 'no failing kill',
    ok:
      killReport.killsLosingAcked === 0 &&
      killReport.killsWithPartial === 0 &&
      killReport.integrityFailures === 0,
    seconds: Math.round(killReport.elapsedMs / 1000),
    notes: `${killReport.acked} units acked over ${killReport.kills} runs (${killReport.startupKills} killed during startup); states = kills`,
    failures: [],
  });
}

for (const { row, report, ops } of recoveryRows) {
  const failing = report.states - report.ok;
  const restore = row.name.startsWith('restore');
  rows.push({
    workload: row.name,
    mode: `FULL · ${row.model}`,
    states: report.states,
    lostAcked: failing,
    partialUnits: 0,
    integrityFailures: 0,
    unreadable: report.shows.nothing,
    outOfOrder: 0,
    rejectedPresent: 0,
    expected: restore
      ? 'old or restored database in every state'
      : 'every state reopens with its acknowledged units',
    ok: failing === 0 && (!restore || (report.shows.old > 0 && report.shows.restored > 0)),
    seconds: Math.round(report.elapsedMs / 1000),
    notes: restore
      ? `${ops} ops; ${report.shows.old} states show the old database, ${report.shows.restored} the restored one (the old one whole in quarantine)`
      : `${ops} ops; ${report.shows.opened} states reopened`,
    failures: report.failures
      .slice(0, 5)
      .map((f) => `K=${f.point} ${f.subset}: ${f.problems.join(' | ')}`),
  });
}
if (inspector !== undefined) {
  rows.push({
    workload: 'wal-inspector',
    mode: 'torn tails',
    states: inspector.states,
    lostAcked: 0,
    partialUnits: 0,
    integrityFailures: 0,
    unreadable: inspector.flagged,
    outOfOrder: 0,
    rejectedPresent: 0,
    expected: 'no torn tail taken for damage',
    ok: inspector.flagged === 0 && inspector.withFrames > 0,
    seconds: inspector.seconds,
    notes: `every state of ${inspectorRuns.join(' and ')} read by the WAL inspector; ${inspector.withFrames} had WAL frames, ${inspector.flagged} were flagged as damaged`,
    failures: [],
  });
}

const gitHead = (() => {
  try {
    const git = (args: string[]) =>
      execFileSync('git', args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim();
    const head = git(['rev-parse', '--short', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--', 'src']);
    return dirty === '' ? head : `${head} + uncommitted src changes`;
  } catch {
    return 'unknown';
  }
})();
const cpus = os.cpus();
const machine = `${cpus[0]?.model ?? 'unknown CPU'} (${cpus.length} cores), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`;
const totalSeconds = Math.round((performance.now() - started) / 1000);

const header =
  '| workload | mode | states | lost acknowledged | partial units | integrity failures | unreadable | out of order | rejected present | as expected |';
const lines = [
  `Date: ${new Date().toISOString()} · commit ${gitHead} · ${machine} · wall time ${Math.floor(totalSeconds / 60)} min ${totalSeconds % 60} s`,
  '',
  header,
  `|${header
    .split('|')
    .slice(1, -1)
    .map(() => ' --- ')
    .join('|')}|`,
  ...rows.map(
    (r) =>
      `| ${r.workload} | ${r.mode} | ${r.states.toLocaleString('en-US')} | ${r.lostAcked} | ${r.partialUnits} | ${r.integrityFailures} | ${r.unreadable} | ${r.outOfOrder} | ${r.rejectedPresent} | ${r.ok ? 'yes' : 'NO'} |`,
  ),
  '',
  'Columns count failing states (for kill -9: failing kills). Notes:',
  '',
  ...rows.map((r) => `- ${r.workload} (${r.mode}), checked in ${r.seconds} s: ${r.notes}`),
];
const failed = rows.filter((r) => !r.ok);
for (const r of failed) {
  lines.push('', `${r.workload} (${r.mode}) is not as expected (${r.expected}). First failures:`);
  for (const f of r.failures) lines.push(`  ${f}`);
}
process.stdout.write(`${lines.join('\n')}\n`);

mkdirSync(dirname(values.out), { recursive: true });
writeFileSync(
  values.out,
  JSON.stringify(
    { date: new Date().toISOString(), commit: gitHead, machine, totalSeconds, rows },
    null,
    2,
  ),
);
log(`results written to ${values.out}`);
if (!values.keep) rmSync(work, { recursive: true, force: true });
process.exit(failed.length === 0 ? 0 : 1);
