/**
 * Checks a slice of recovery crash states in a fresh process (see recovery-states.ts) and
 * prints the report as one JSON line.
 *
 * Run: node --import tsx test/crash/recovery-explore-cli.ts JOB.json
 * JOB.json: { log, snapshot (a saveSnapshot file), model, job (RecoveryJob), specs }.
 */
import { readFileSync } from 'node:fs';
import { readOpLog } from './oplog.js';
import { exploreRecoveryStates, loadSnapshot, type RecoveryJob } from './recovery-states.js';
import { CrashReplayer, type CrashStateSpec, type DurabilityModel } from './replay.js';

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  log: string;
  snapshot: string;
  model: DurabilityModel;
  job: RecoveryJob;
  specs: CrashStateSpec[];
};
const replayer = new CrashReplayer(readOpLog(job.log), {
  snapshot: loadSnapshot(job.snapshot),
  model: job.model,
});
const report = await exploreRecoveryStates(replayer, job.specs, job.job);
process.stdout.write(`${JSON.stringify(report)}\n`);
process.exit(0);
