/**
 * `npm run demo`: a local-first AI companion's write load on an embedded database file, through
 * walguard's ConversationStore and MemoryStore.
 *
 * Several simulated chat sessions run concurrently. Each turn:
 * - the user's message is appended (critical: once the UI shows it as sent it must never be
 *   lost; the message and the conversation's `updated_at` are one unit);
 * - the companion recalls the memories nearest to the message (a vector search on libSQL's
 *   native index; the access times are recorded as deferred writes — losing the last 100 ms of
 *   "last accessed" in a power cut is harmless, paying an fsync for each is not);
 * - the assistant's reply is appended (critical);
 * - every few turns a new memory is stored with its embedding (critical).
 * A progress line shows throughput; at the end (or on Ctrl-C) the sessions finish their turn,
 * the database closes cleanly (queue drained, WAL checkpointed) and a summary prints. Running it
 * again continues the same database: the same conversations grow, memories accumulate.
 *
 *   npm run demo -- [--sessions 8] [--seconds 10] [--path data/demo.db]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase, type Walguard } from '../src/index.js';
import {
  ConversationStore,
  type ConversationTables,
  conversationMigrations,
  MemoryStore,
  type MemoryTables,
  MigrationError,
  memoryMigrations,
} from '../src/repo/stores.js';

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

/** Embedding dimensions of the demo's toy embedder. */
const DIMENSIONS = 64;

type AppDB = ConversationTables & MemoryTables;

// The demo stops its sessions itself on Ctrl-C, then closes; walguard's own handler is off.
// Opening runs the stores' pending migrations, each in its own transaction, after a backup
// when the database already holds data.
let db: Walguard<AppDB>;
try {
  db = await openDatabase<AppDB>({
    path: values.path!,
    handleSignals: false,
    migrations: [conversationMigrations(), memoryMigrations({ dimensions: DIMENSIONS })],
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
const conversations = await ConversationStore.open<AppDB, { persona: string }>(db);
const memories = await MemoryStore.open(db, { dimensions: DIMENSIONS });

const before = {
  messages: await conversations.messages.count(),
  memories: await memories.count(),
};

const TOPICS = [
  ['tea', 'garden', 'morning', 'rain', 'book'],
  ['guitar', 'song', 'concert', 'band', 'practice'],
  ['hiking', 'mountain', 'trail', 'weather', 'boots'],
  ['cooking', 'pasta', 'recipe', 'dinner', 'basil'],
  ['work', 'deadline', 'meeting', 'project', 'coffee'],
  ['cat', 'vet', 'toy', 'nap', 'window'],
];

/** A toy embedder: hashed bag of words, normalised. Similar words → similar vectors. */
function embed(text: string): Float32Array {
  const v = new Float32Array(DIMENSIONS);
  for (const word of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    let h = 2166136261;
    for (let i = 0; i < word.length; i++) h = Math.imul(h ^ word.charCodeAt(i), 16777619);
    v[(h >>> 0) % DIMENSIONS]! += (h & 1) === 0 ? 1 : -1;
  }
  v[0]! += 1e-3; // never all zeros
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  return v.map((x) => x / norm);
}

let stopping = false;
let messages = 0;
let memoriesAdded = 0;
let recalls = 0;
const started = performance.now();
const latencies: number[] = [];

async function timed<T>(work: Promise<T>): Promise<T> {
  const t0 = performance.now();
  const result = await work;
  latencies.push(performance.now() - t0);
  return result;
}

async function session(n: number): Promise<void> {
  // The same conversation on every run: a rerun continues it.
  const id = `session-${n}`;
  if ((await conversations.getConversation(id)) === undefined) {
    await conversations.createConversation({
      id,
      title: `Chat ${n}`,
      metadata: { persona: n % 2 === 0 ? 'gardener' : 'musician' },
    });
  }
  const topic = TOPICS[n % TOPICS.length]!;
  let turn = await conversations.countMessages(id);
  while (!stopping && performance.now() - started < seconds * 1000) {
    const words = [topic[turn % 5]!, topic[(turn * 3 + 1) % 5]!, topic[(turn * 7 + 2) % 5]!];
    const said = `I keep thinking about the ${words[0]} and the ${words[1]}, maybe ${words[2]} later?`;
    await timed(conversations.appendMessage(id, { role: 'user', content: said, tokenCount: 18 }));
    messages++;
    // Recall: a vector search; the access times are recorded as one deferred write.
    const recalled = await memories.recall(embed(said), { k: 3 });
    recalls++;
    const reply =
      recalled.length > 0
        ? `You told me before: "${recalled[0]!.content}". How is the ${words[0]} going?`
        : `Tell me more about the ${words[0]}.`;
    await timed(
      conversations.appendMessage(id, { role: 'assistant', content: reply, tokenCount: 16 }),
    );
    messages++;
    if (turn % 5 === 0) {
      const content = `Session ${n} likes the ${words[0]} with ${words[1]} (turn ${turn})`;
      await timed(
        memories.add({
          kind: turn % 10 === 0 ? 'preference' : 'fact',
          content,
          importance: ((turn * 37) % 100) / 100,
          embedding: embed(content),
        }),
      );
      memoriesAdded++;
    }
    turn += 2;
    if (turn % 50 === 0) await new Promise((r) => setImmediate(r));
  }
}

/**
 * On a terminal the progress line is redrawn in place 4 times a second; elsewhere (a CI log,
 * a pipe) a plain line is written every 2 s, since `\r` would pile every redraw into one line.
 */
const live = process.stderr.isTTY === true;
function progressLine(note = ''): void {
  const elapsed = (performance.now() - started) / 1000;
  const s = db.stats();
  const text = `${elapsed.toFixed(1)}s  ${messages} messages  ${(messages / elapsed).toFixed(0)}/s  ${memoriesAdded} memories  ${recalls} recalls  commits ${s.commits}  units ${s.units}  wal ${(s.walBytes / 1024).toFixed(0)} KiB ${note}`;
  process.stderr.write(live ? `\r${text}  ` : `${text}\n`);
}
const progress = setInterval(() => progressLine(), live ? 250 : 2000);

process.once('SIGINT', () => {
  stopping = true;
  process.stderr.write(
    `${live ? '\n' : ''}Ctrl-C: finishing the turns in flight and closing… (Ctrl-C again exits at once: acknowledged messages are already durable)\n`,
  );
});

await Promise.all(Array.from({ length: sessions }, (_, n) => session(n)));
const elapsed = (performance.now() - started) / 1000;
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
  `${messages} in ${elapsed.toFixed(1)} s (${(messages / elapsed).toFixed(0)} messages/s, each durable when acknowledged)`,
);
line(
  'memories',
  `${memoriesAdded} added, ${recalls} recalls (vector search); access times as ${deferredUnits} deferred units`,
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
