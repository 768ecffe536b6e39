/**
 * Explores the crash states of a recorded log in this (fresh) process and
 * prints the report as JSON: for explorations too big for one process
 * (libsql leaks ~0.4 MB and 3 fds per checked state), run several of these
 * over slices of the points.
 *
 * Run: node --import tsx test/crash/explore-cli.ts --log LOG [options]
 *   --log FILE          operation log written by the shim [required]
 *   --snapshot-dir DIR  folder holding the snapshot files (default: empty start)
 *   --model M           strict | ext4-like [strict]
 *   --points P          syncs | every [syncs]
 *   --from K --to K     only crash points in [from, to)
 *   --max-states N      thin the points to at most N states
 *   --random N          random and torn subsets per point [1]
 *   --seed N            seed of the subsets [1]
 *   --db NAME           database file name [db.sqlite]
 *   --key KEY           encryption key
 *   --keep-failures N   keep the folders of N failing states
 *   --specs FILE        JSON array of crash state specs to check instead of a plan (the
 *                       plan options above are then ignored; --from/--to still filter)
 *   --failed-sync M     retry | drop: what a failed fsync does to unsynced writes [retry]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { exploreCrashStates } from './explore.js';
import { readOpLog } from './oplog.js';
import {
  CrashReplayer,
  type CrashStateSpec,
  type DurabilityModel,
  type FailedSyncModel,
} from './replay.js';
import { EMPTY_SNAPSHOT, takeSnapshot } from './snapshot.js';

const { values } = parseArgs({
  options: {
    log: { type: 'string' },
    'snapshot-dir': { type: 'string' },
    model: { type: 'string', default: 'strict' },
    points: { type: 'string', default: 'syncs' },
    from: { type: 'string' },
    to: { type: 'string' },
    'max-states': { type: 'string' },
    random: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    db: { type: 'string', default: 'db.sqlite' },
    key: { type: 'string' },
    'keep-failures': { type: 'string', default: '0' },
    specs: { type: 'string' },
    'failed-sync': { type: 'string', default: 'retry' },
  },
});

if (values.log === undefined) throw new Error('Expected `--log` (the operation log)');
if (values.model !== 'strict' && values.model !== 'ext4-like') {
  throw new Error(`Expected \`--model\` to be strict or ext4-like, got \`${values.model}\``);
}
if (values.points !== 'syncs' && values.points !== 'every') {
  throw new Error(`Expected \`--points\` to be syncs or every, got \`${values.points}\``);
}
if (values['failed-sync'] !== 'retry' && values['failed-sync'] !== 'drop') {
  throw new Error(
    `Expected \`--failed-sync\` to be retry or drop, got \`${values['failed-sync']}\``,
  );
}
const ops = readOpLog(values.log);
const snapshot = values['snapshot-dir'] ? takeSnapshot(values['snapshot-dir']) : EMPTY_SNAPSHOT;
const replayer = new CrashReplayer(ops, {
  snapshot,
  model: values.model as DurabilityModel,
  failedSync: values['failed-sync'] as FailedSyncModel,
});
const from = values.from !== undefined ? Number(values.from) : 0;
const to = values.to !== undefined ? Number(values.to) : ops.length + 1;
const planned: CrashStateSpec[] =
  values.specs !== undefined
    ? (JSON.parse(readFileSync(values.specs, 'utf8')) as CrashStateSpec[])
    : replayer.plan({
        points: values.points,
        randomPerPoint: Number(values.random),
        seed: Number(values.seed),
        ...(values['max-states'] !== undefined ? { maxStates: Number(values['max-states']) } : {}),
      });
const specs = planned.filter((s) => s.point >= from && s.point < to);
const report = exploreCrashStates({
  replayer,
  specs,
  dbFile: values.db,
  ...(values.key !== undefined ? { encryptionKey: values.key } : {}),
  keepFailures: Number(values['keep-failures']),
});
process.stdout.write(`${JSON.stringify(report)}\n`);
