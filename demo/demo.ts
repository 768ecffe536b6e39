/**
 * `npm run demo`: a local-first AI companion's write load on an embedded database file, through
 * walguard's ConversationStore and MemoryStore.
 *
 * Several simulated chat sessions run concurrently (the turns are in chat-workload.ts: a
 * critical user message, a vector-search recall whose access times are deferred writes, a
 * critical reply, and every few turns a critical new memory). A progress line shows
 * throughput; at the end (or on Ctrl-C) the sessions finish their turn, the database closes
 * cleanly (queue drained, WAL checkpointed) and a summary prints. Running it again continues
 * the same database: the same conversations grow, memories accumulate.
 *
 *   npm run demo -- [--sessions 8] [--seconds 10] [--path data/demo.db]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase, type Walguard } from '../src/index.js';
import { MigrationError } from '../src/repo/stores.js';
import { runChat } from './chat-workload.js';
import { type ChatDB, chatMigrations, walguardChat } from './walguard-chat.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    path: { type: 'string', default: path.join('data', 'demo.db') },
  },
});
const sessions = Number(values.sessions);
const seconds = Number(values.seconds);
if (!Number.isInteger(sessions) || sessions < 1 || !(seconds > 0)) {
  console.error('usage: npm run demo -- [--sessions 8] [--seconds 10] [--path data/demo.db]');
  process.exit(2);
}

// The demo stops its sessions itself on Ctrl-C, then closes; walguard's own handler is off.
// Opening runs the stores' pending migrations, each in its own transaction, after a backup
// when the database already holds data.
let db: Walguard<ChatDB>;
try {
  db = await openDatabase<ChatDB>({
    path: values.path!,
    handleSignals: false,
    migrations: chatMigrations(),
  });
} catch (error) {
  if (error instanceof MigrationError) {
    console.error(
      `${values.path} cannot be migrated (${error.message}).\nIf it was made by an older version of this demo, move it away or pass --path.`,
    );
    process.exit(1);
  }
  throw error;
}
if (db.migrations !== undefined && db.migrations.ran.length > 0) {
  console.error(`migrated: ${db.migrations.ran.map((r) => `${r.set}/${r.migration}`).join(', ')}`);
}
const { conversations, memories, backend } = await walguardChat(db);

const before = {
  messages: await conversations.messages.count(),
  memories: await memories.count(),
};

let stopping = false;
const latencies: number[] = [];
const record = (_id: number, ms: number) => latencies.push(ms);
const counts = { messages: 0, memories: 0, recalls: 0, started: performance.now() };

/**
 * On a terminal the progress line is redrawn in place 4 times a second; elsewhere (a CI log,
 * a pipe) a plain line is written every 2 s, since `\r` would pile every redraw into one line.
 */
const live = process.stderr.isTTY === true;
function progressLine(note = ''): void {
  const elapsed = (performance.now() - counts.started) / 1000;
  const s = db.stats();
  const text = `${elapsed.toFixed(1)}s  ${counts.messages} messages  ${(counts.messages / elapsed).toFixed(0)}/s  ${counts.memories} memories  ${counts.recalls} recalls  commits ${s.commits}  units ${s.units}  wal ${(s.walBytes / 1024).toFixed(0)} KiB ${note}`;
  process.stderr.write(live ? `\r${text}  ` : `${text}\n`);
}
const progress = setInterval(() => progressLine(), live ? 250 : 2000);

process.once('SIGINT', () => {
  stopping = true;
  process.stderr.write(
    `${live ? '\n' : ''}Ctrl-C: finishing the turns in flight and closing… (Ctrl-C again exits at once: acknowledged messages are already durable)\n`,
  );
});

await runChat(
  backend,
  { sessions, seconds, stopped: () => stopping, onMessage: record, onMemory: record },
  counts,
);
const elapsed = (performance.now() - counts.started) / 1000;
const check = await db.check('quick');
const after = {
  messages: await conversations.messages.count(),
  conversations: await conversations.conversations.count(),
  memories: await memories.count(),
};
progressLine('closing…');
const stats = db.stats();
await db.close();
clearInterval(progress);
// close() flushed the deferred access records; count them after.
const deferredUnits = db.stats().deferredUnits;
latencies.sort((a, b) => a - b);
const p = (q: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
if (live) process.stderr.write('\n');
const line = (label: string, text: string) => console.log(`  ${label.padEnd(20)}${text}`);
console.log(`walguard demo — ${values.path}`);
line('sessions', String(sessions));
line(
  'messages written',
  `${counts.messages} in ${elapsed.toFixed(1)} s (${(counts.messages / elapsed).toFixed(0)} messages/s, each durable when acknowledged)`,
);
line(
  'memories',
  `${counts.memories} added, ${counts.recalls} recalls (vector search); access times as ${deferredUnits} deferred units`,
);
line(
  'commits vs units',
  `${stats.commits} commits for ${stats.units} units (${(stats.units / Math.max(1, stats.commits)).toFixed(1)} units per commit)`,
);
line('ack latency', `p50 ${p(0.5).toFixed(2)} ms, p99 ${p(0.99).toFixed(2)} ms (critical writes)`);
line('integrity', check.ok ? 'ok' : check.messages.join('; '));
line(
  'in the database',
  `${after.messages} messages in ${after.conversations} conversations, ${after.memories} memories; before this run: ${before.messages} messages, ${before.memories} memories`,
);
console.log('  closed cleanly: queue drained, WAL checkpointed and truncated');
