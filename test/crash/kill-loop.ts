/**
 * kill -9 at random moments of a mixed walguard workload, many times: the long form of
 * test/durability/kill-9.test.ts, for `npm run crash`. The writer is that test's fixture
 * (test/fixtures/kill-writer.ts: 48 callers of critical writes, interactive transactions and
 * deferred writes, each unit one `units` row and 3 `parts` rows, acknowledged ids printed on
 * stdout). After each kill a fresh connection of this process checks the file:
 * `integrity_check`, every unit acknowledged by any earlier run present, no unit in part.
 *
 * The kill moment: usually a random 0-400 ms after the run's first acknowledgement (the
 * machine may be slow to start the child); one kill in ten lands a random 0-300 ms after
 * the child started, during startup, WAL recovery of the previous kill, or the first batches.
 * A file takes `perFile` kills, then a fresh one starts (so checks stay fast).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { openLibsql } from './libsql.js';
import { REPO_ROOT } from './recorder.js';
import { seededRandom } from './replay.js';

/** The kill -9 writer shared with test/durability/kill-9.test.ts. */
export const KILL_WRITER = 'test/fixtures/kill-writer.ts';

/** Options of {@link runKillLoop}. */
export interface KillLoopOptions {
  /** How many kills. */
  kills: number;
  /** Folder for the database files (created). */
  dir: string;
  /** Kills per database file (default 25). */
  perFile?: number;
  /** Seed of the kill moments (default 1). */
  seed?: number;
  /** Called after each kill's check. */
  onKill?: (kill: number, check: KillCheck) => void;
}

/** The check after one kill. */
export interface KillCheck {
  /** Units the killed run acknowledged. */
  acked: number;
  /** Acknowledged units (of any run on this file) missing. */
  lost: number[];
  /** Units present in part. */
  partial: number[];
  /** `integrity_check` lines (`['ok']` when healthy), or the error opening the file. */
  integrity: string[];
  /** When the kill was sent: `startup` or `running`. */
  moment: 'startup' | 'running';
}

/** What the loop found. */
export interface KillLoopReport {
  /** Kills made. */
  kills: number;
  /** Units acknowledged in all runs. */
  acked: number;
  /** Kills after which an acknowledged unit was missing. */
  killsLosingAcked: number;
  /** Acknowledged units missing, over all checks (a unit counts once per file). */
  lostAcked: number;
  /** Kills after which a unit was present in part. */
  killsWithPartial: number;
  /** Kills after which `integrity_check` failed or the file could not be read. */
  integrityFailures: number;
  /** Kills sent during startup. */
  startupKills: number;
  /** Wall time in ms. */
  elapsedMs: number;
}

/** Runs the writer once and kills it at a moment drawn from `rand`; resolves with its acks. */
async function runAndKill(
  file: string,
  run: number,
  rand: () => number,
): Promise<{ acked: number[]; moment: KillCheck['moment'] }> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', KILL_WRITER, file, String(run)],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const acked: number[] = [];
  let buffer = '';
  let onFirstAck!: () => void;
  const firstAck = new Promise<void>((resolve) => {
    onFirstAck = resolve;
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop()!;
    for (const line of lines) {
      if (line === 'ready' || line === '') continue;
      acked.push(Number(line));
      if (acked.length === 1) onFirstAck();
    }
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const early = rand() < 0.1;
  if (early) {
    await new Promise((r) => setTimeout(r, rand() * 300));
  } else {
    // A child that dies before its first ack (it should not) ends the wait too.
    await Promise.race([firstAck, exited]);
    await new Promise((r) => setTimeout(r, rand() * 400));
  }
  child.kill('SIGKILL');
  await exited;
  return { acked, moment: early ? 'startup' : 'running' };
}

/** Checks a killed writer's file through a fresh connection. */
function check(file: string, allAcked: readonly number[]): Omit<KillCheck, 'acked' | 'moment'> {
  let db: ReturnType<typeof openLibsql> | undefined;
  try {
    db = openLibsql(file);
    const integrity = (
      db
        .prepare('SELECT CAST(integrity_check AS BLOB) FROM pragma_integrity_check')
        .raw()
        .all() as [Uint8Array][]
    ).map(([b]) => Buffer.from(b).toString('latin1'));
    const hasTables =
      (
        db
          .prepare("SELECT count(*) FROM sqlite_master WHERE name IN ('units', 'parts')")
          .raw()
          .get() as [number]
      )[0] === 2;
    if (!hasTables) {
      return { lost: [...allAcked], partial: [], integrity };
    }
    const present = new Set(
      (db.prepare('SELECT id FROM units').raw().all() as [number][]).map(([id]) => Number(id)),
    );
    const partial = (
      db
        .prepare(
          `SELECT u.id FROM units u LEFT JOIN parts p ON p.unit_id = u.id
             GROUP BY u.id HAVING count(p.part) != 3
           UNION
           SELECT p.unit_id FROM parts p LEFT JOIN units u ON u.id = p.unit_id WHERE u.id IS NULL`,
        )
        .raw()
        .all() as [number][]
    ).map(([id]) => Number(id));
    return { lost: allAcked.filter((id) => !present.has(id)), partial, integrity };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    return { lost: [], partial: [], integrity: [`${e.code ?? 'ERROR'}: ${e.message ?? error}`] };
  } finally {
    try {
      db?.close();
    } catch {
      // Best effort: the verdict is made.
    }
  }
}

/** Runs the kill loop; see the file header. */
export async function runKillLoop(options: KillLoopOptions): Promise<KillLoopReport> {
  const started = performance.now();
  const perFile = options.perFile ?? 25;
  const rand = seededRandom(options.seed ?? 1);
  mkdirSync(options.dir, { recursive: true });
  const report: KillLoopReport = {
    kills: 0,
    acked: 0,
    killsLosingAcked: 0,
    lostAcked: 0,
    killsWithPartial: 0,
    integrityFailures: 0,
    startupKills: 0,
    elapsedMs: 0,
  };
  let allAcked: number[] = [];
  let lostOnFile = new Set<number>();
  for (let kill = 1; kill <= options.kills; kill++) {
    const fileIndex = Math.floor((kill - 1) / perFile);
    const file = join(options.dir, `killed-${fileIndex}.db`);
    if ((kill - 1) % perFile === 0) {
      allAcked = [];
      lostOnFile = new Set();
    }
    const { acked, moment } = await runAndKill(file, kill, rand);
    allAcked.push(...acked);
    const result: KillCheck = { acked: acked.length, moment, ...check(file, allAcked) };
    report.kills++;
    report.acked += acked.length;
    if (moment === 'startup') report.startupKills++;
    if (result.lost.length > 0) report.killsLosingAcked++;
    for (const id of result.lost) lostOnFile.add(id);
    if (result.partial.length > 0) report.killsWithPartial++;
    if (result.integrity.join() !== 'ok') report.integrityFailures++;
    if (kill % perFile === 0 || kill === options.kills) report.lostAcked += lostOnFile.size;
    options.onKill?.(kill, result);
  }
  report.elapsedMs = performance.now() - started;
  return report;
}
