/**
 * The chat workload (chat-workload.ts) as `npm run demo:power-cut` records it under the
 * power-loss recorder: through walguard, or the seed app's way (naive-chat.ts). After each
 * acknowledged message it writes the mark `ack <message id>` (test/crash/marks.ts), so a crash
 * state knows which messages the app had been told were saved. It ends the way the seed app's
 * laptop did: SIGKILL to itself, mid-run state left on disk as it is.
 *
 * Run: node --import tsx demo/power-cut-workload.ts --driver walguard|naive --dir DIR [options]
 * Prints one JSON line ({@link PowerCutWorkloadSummary}) on stdout before it kills itself.
 *
 * Options (defaults in brackets):
 *   --driver D      walguard (FULL, group commit) or naive (@libsql/client, NORMAL) [required]
 *   --dir DIR       folder holding the database `db.sqlite`, already migrated [required]
 *   --sessions N    concurrent chat sessions [8]
 *   --seconds S     how long the sessions start turns [2]
 */
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MarkWriter } from '../test/crash/marks.js';
import { intOption } from '../test/crash/workloads/options.js';
import { type ChatBackend, runChat } from './chat-workload.js';
import type { ChatDB } from './walguard-chat.js';

/** What the workload prints. */
export interface PowerCutWorkloadSummary {
  /** Which backend ran. */
  driver: 'walguard' | 'naive';
  /** Messages acknowledged (each marked `ack <id>`). */
  messages: number;
  /** Memories acknowledged. */
  memories: number;
  /** Recalls made. */
  recalls: number;
  /** Wall time of the chat run, ms. */
  elapsedMs: number;
  /** Acknowledged messages per second. */
  messagesPerSecond: number;
  /** `PRAGMA synchronous` the writes ran at, read back at the end (1 NORMAL, 2 FULL). */
  synchronous: number;
  /** walguard only: write transactions committed (each one fsync under FULL). */
  commits?: number;
}

const { values } = parseArgs({
  options: {
    driver: { type: 'string' },
    dir: { type: 'string' },
    sessions: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '2' },
  },
});
const driver = values.driver;
if (driver !== 'walguard' && driver !== 'naive') {
  throw new Error(`Expected \`--driver\` to be walguard or naive, got \`${String(driver)}\``);
}
if (values.dir === undefined) throw new Error('Expected `--dir` (the database folder)');
const seconds = Number(values.seconds);
if (!(seconds > 0)) throw new Error(`Expected \`--seconds\` to be > 0, got \`${values.seconds}\``);
const sessions = intOption(values, 'sessions', 1);
const path = join(values.dir, 'db.sqlite');

/** An open backend, and what the summary reads from it at the end. */
interface Opened {
  backend: ChatBackend;
  synchronous: () => Promise<number>;
  commits?: () => number;
}

/** Opens the database through `driver`, importing only that driver (the naive run never loads walguard). */
async function open(): Promise<Opened> {
  if (driver === 'naive') {
    const { openNaiveChat } = await import('./naive-chat.js');
    const naive = await openNaiveChat(path);
    return { backend: naive.backend, synchronous: naive.synchronous };
  }
  const [{ openDatabase }, { chatMigrations, walguardChat }] = await Promise.all([
    import('../src/index.js'),
    import('./walguard-chat.js'),
  ]);
  const db = await openDatabase<ChatDB>({
    path,
    handleSignals: false,
    logger: false,
    migrations: chatMigrations(),
  });
  return {
    backend: (await walguardChat(db)).backend,
    synchronous: async () => {
      const { writer } = db.stats().settings;
      return 'synchronous' in writer ? writer.synchronous : Number.NaN;
    },
    commits: () => db.stats().commits,
  };
}

const { backend, synchronous, commits } = await open();
const marks = new MarkWriter(values.dir);
const counts = await runChat(backend, {
  sessions,
  seconds,
  onMessage: (id) => marks.mark(`ack ${id}`),
});
const elapsedMs = performance.now() - counts.started;
const summary: PowerCutWorkloadSummary = {
  driver,
  messages: counts.messages,
  memories: counts.memories,
  recalls: counts.recalls,
  elapsedMs,
  messagesPerSecond: counts.messages / (elapsedMs / 1000),
  synchronous: await synchronous(),
  ...(commits !== undefined ? { commits: commits() } : {}),
};
marks.close();
writeSync(1, `${JSON.stringify(summary)}\n`);
process.kill(process.pid, 'SIGKILL');
