/**
 * Crash workloads of walguard's recovery paths (issue 10): a restore, and a new database's
 * first open. Units are the rows of workload-schema.ts (one `units` row plus `--parts` rows of
 * `unit_parts`, one walguard unit each), so that checker.ts can read any state back.
 *
 * Run: node --import tsx test/crash/workloads/recovery.ts <mode> --dir DIR [options]
 *
 * Modes:
 *   setup-restore  (not recorded) writes units 1..--units, takes a backup into --backup-dir
 *                  after unit --backup-at, and ends with SIGKILL, so the database to be
 *                  replaced has committed transactions in its -wal as well as in its file
 *   restore        (recorded) restore({ path, backupPath: --backup }); marks `mark restore
 *                  start` and `mark restore done`; exits 0
 *   first-open     (recorded) opens a database that does not exist yet, writes --units
 *                  units (one write() each, `ack <id>` after each), then --end kill|close
 *
 * Options: --db NAME [db.sqlite], --units N [20], --parts N [3], --backup-at N, --backup-dir
 * DIR, --backup PATH, --key HEX (a raw encryption key: no key file, whose creation by hard
 * link the recorder cannot see), --end kill|close [kill].
 * Prints one JSON line: what it did.
 */
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { openDatabase, restore } from '../../../src/index.js';
import { MarkWriter } from '../marks.js';
import { payloadFor, WORKLOAD_SCHEMA } from '../workload-schema.js';
import { intOption } from './options.js';

interface WorkloadDB {
  units: { id: number; kind: string; parts: number; payload: string };
  unit_parts: { unit_id: number; part: number; payload: string };
}

const mode = process.argv[2];
const { values } = parseArgs({
  args: process.argv.slice(3),
  options: {
    dir: { type: 'string' },
    db: { type: 'string', default: 'db.sqlite' },
    units: { type: 'string', default: '20' },
    parts: { type: 'string', default: '3' },
    'backup-at': { type: 'string', default: '0' },
    'backup-dir': { type: 'string' },
    backup: { type: 'string' },
    key: { type: 'string' },
    end: { type: 'string', default: 'kill' },
  },
});
if (values.dir === undefined) throw new Error('Expected `--dir`');
const file = join(values.dir, String(values.db));
const units = intOption(values, 'units', 0);
const parts = intOption(values, 'parts', 1);
const encryption = values.key === undefined ? undefined : { key: values.key };
const print = (line: Record<string, unknown>) => writeSync(1, `${JSON.stringify(line)}\n`);

async function open(extra: Record<string, unknown> = {}) {
  return openDatabase<WorkloadDB>({
    path: file,
    logger: false,
    handleSignals: false,
    checkpoint: { idleMs: 0 },
    walAutocheckpointPages: 0,
    encryption,
    ...extra,
  });
}

async function writeUnit(db: Awaited<ReturnType<typeof open>>, id: number): Promise<void> {
  await db.write((k) => [
    k.insertInto('units').values({ id, kind: 'write', parts, payload: payloadFor(id, -1, 40) }),
    ...Array.from({ length: parts }, (_, part) =>
      k.insertInto('unit_parts').values({ unit_id: id, part, payload: payloadFor(id, part, 300) }),
    ),
  ]);
}

const schema = () =>
  WORKLOAD_SCHEMA.split(';')
    .filter((s) => s.trim() !== '')
    .map((s) => sql.raw(s));

if (mode === 'setup-restore') {
  const backupAt = intOption(values, 'backup-at', 1);
  const db = await open({ backup: { dir: values['backup-dir'] } });
  await db.write(schema);
  let backup = '';
  for (let id = 1; id <= units; id++) {
    await writeUnit(db, id);
    if (id === backupAt) backup = (await db.backup()).path;
  }
  print({ mode, backup, units, backupAt });
  process.kill(process.pid, 'SIGKILL');
} else if (mode === 'restore') {
  const marks = new MarkWriter(values.dir);
  marks.mark('mark restore start');
  const result = await restore({
    path: file,
    backupPath: String(values.backup),
    ...(encryption === undefined ? {} : { encryption }),
  });
  marks.mark('mark restore done');
  marks.close();
  print({ mode, ...result });
} else if (mode === 'first-open') {
  const marks = new MarkWriter(values.dir);
  marks.mark('mark open start');
  const db = await open();
  marks.mark('mark opened');
  await db.write(schema);
  marks.mark('mark schema');
  for (let id = 1; id <= units; id++) {
    await writeUnit(db, id);
    marks.mark(`ack ${id}`);
  }
  if (values.end === 'close') {
    await db.close();
    marks.mark('mark closed');
  }
  marks.close();
  print({ mode, units, end: values.end });
  if (values.end !== 'close') process.kill(process.pid, 'SIGKILL');
} else {
  throw new Error(`Unknown mode \`${mode}\`: setup-restore, restore or first-open`);
}
