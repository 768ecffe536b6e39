/**
 * Entry point of the child process started by `runChildTask`: reads one task as JSON on
 * stdin, runs it with its own connection, prints one JSON result line, and exits (so the
 * connection's descriptors go with the process).
 */
import fs from 'node:fs';
import { openSqlite } from '../sqlite-types.js';
import { type ChildResult, type ChildTask, dieWithParent } from './child-task.js';

dieWithParent();
// Files this child creates (a backup copy) are private: 0600, whatever the app's umask. The
// umask is process-wide, which is why this is done here, in a process of its own.
process.umask(0o077);

async function run(task: ChildTask): Promise<ChildResult> {
  if (task.op === 'vacuum-into') {
    const db = await openSqlite(task.source, task.key ? { encryptionKey: task.key } : {});
    db.exec('PRAGMA busy_timeout = 10000');
    db.exec(`VACUUM INTO '${task.dest.replaceAll("'", "''")}'`);
    const fd = fs.openSync(task.dest, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return { ok: true, bytes: fs.statSync(task.dest).size };
  }
  const db = await openSqlite(task.path, task.key ? { encryptionKey: task.key } : {});
  const rows = db
    .prepare(`PRAGMA ${task.full ? 'integrity_check' : 'quick_check'}(20)`)
    .raw(true)
    .all() as unknown[][];
  const userVersion = (db.prepare('PRAGMA user_version').raw(true).get() as number[])[0];
  return { ok: true, messages: rows.map((r) => String(r[0])), userVersion };
}

let input = '';
process.stdin.on('data', (c: Buffer) => {
  input += c.toString();
});
process.stdin.on('end', async () => {
  let result: ChildResult;
  try {
    result = await run(JSON.parse(input) as ChildTask);
  } catch (error) {
    const e = error as { code?: string; message?: string };
    result = { ok: false, code: e.code ?? 'SQLITE_ERROR', message: e.message ?? String(error) };
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
});
