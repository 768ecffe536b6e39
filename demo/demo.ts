/**
 * `npm run demo`: a local-first chat app's write load on an embedded database file.
 *
 * Several simulated chat sessions append user and assistant messages (critical writes: a
 * message must never be lost once the UI showed it as sent) and record memory accesses
 * (deferred writes: losing the last 100 ms of "last accessed" times is fine). A progress
 * line shows throughput; at the end (or on Ctrl-C) the database closes cleanly and a summary
 * prints. Running it again continues the same database.
 *
 *   npm run demo -- [--sessions 8] [--seconds 10] [--path data/demo.db]
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { openDatabase } from '../src/index.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '8' },
    seconds: { type: 'string', default: '10' },
    path: { type: 'string', default: path.join('data', 'demo.db') },
  },
});
const sessions = Number(values.sessions);
const seconds = Number(values.seconds);

interface DB {
  conversations: { id: string; title: string; created_at: number; updated_at: number };
  messages: { id: string; conversation_id: string; role: string; content: string; created_at: number };
  memories: { id: string; content: string; last_accessed_at: number };
}

// The demo stops its sessions itself on Ctrl-C, then closes; walguard's own handler is off.
const db = await openDatabase<DB>({ path: values.path!, handleSignals: false });
await db.transaction(async (trx) => {
  await sql`create table if not exists conversations (
    id text primary key, title text not null, created_at integer not null, updated_at integer not null)`.execute(trx);
  await sql`create table if not exists messages (
    id text primary key, conversation_id text not null references conversations(id) on delete cascade,
    role text not null, content text not null, created_at integer not null)`.execute(trx);
  await sql`create index if not exists messages_by_conversation on messages (conversation_id, created_at)`.execute(trx);
  await sql`create table if not exists memories (
    id text primary key, content text not null, last_accessed_at integer not null)`.execute(trx);
});
const before = await db.kysely.selectFrom('messages').select((e) => e.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();

let stopping = false;
let messages = 0;
const started = performance.now();
const latencies: number[] = [];

async function session(n: number): Promise<void> {
  const conversationId = `c-${Date.now()}-${n}`;
  const now = Date.now();
  await db.kysely
    .insertInto('conversations')
    .values({ id: conversationId, title: `Session ${n}`, created_at: now, updated_at: now })
    .execute();
  let turn = 0;
  while (!stopping && performance.now() - started < seconds * 1000) {
    const role = turn % 2 === 0 ? 'user' : 'assistant';
    const t0 = performance.now();
    const at = Date.now();
    // One atomic unit: the message and the conversation's updated_at.
    await db.write((k) => [
      k.insertInto('messages').values({
        id: `${conversationId}-${turn}`,
        conversation_id: conversationId,
        role,
        content: `${role} says something thoughtful, turn ${turn}. `.repeat(4),
        created_at: at,
      }),
      k.updateTable('conversations').set({ updated_at: at }).where('id', '=', conversationId),
    ]);
    latencies.push(performance.now() - t0);
    messages++;
    // Recall a memory: a deferred write of its access time.
    const memoryId = `m-${n}-${turn % 20}`;
    void db.defer((k) =>
      k
        .insertInto('memories')
        .values({ id: memoryId, content: `memory ${memoryId}`, last_accessed_at: at })
        .onConflict((oc) => oc.column('id').doUpdateSet({ last_accessed_at: at })),
    );
    turn++;
    if (turn % 50 === 0) await new Promise((r) => setImmediate(r));
  }
}

const progress = setInterval(() => {
  const elapsed = (performance.now() - started) / 1000;
  const s = db.stats();
  process.stderr.write(
    `\r${elapsed.toFixed(1)}s  ${messages} messages  ${(messages / elapsed).toFixed(0)}/s  commits ${s.commits}  units ${s.units}  wal ${(s.walBytes / 1024).toFixed(0)} KiB   `,
  );
}, 250);

process.once('SIGINT', () => {
  stopping = true;
  process.stderr.write('\nCtrl-C: finishing the writes in flight and closing…\n');
});

await Promise.all(Array.from({ length: sessions }, (_, n) => session(n)));
clearInterval(progress);
const elapsed = (performance.now() - started) / 1000;
const stats = db.stats();
const check = await db.check('quick');
const total = await db.kysely.selectFrom('messages').select((e) => e.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
await db.close();
latencies.sort((a, b) => a - b);
const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
process.stderr.write('\n');
console.log(`walguard demo — ${values.path}`);
console.log(`  sessions            ${sessions}`);
console.log(`  messages written    ${messages} in ${elapsed.toFixed(1)} s (${(messages / elapsed).toFixed(0)} messages/s, each durable when acknowledged)`);
console.log(`  commits vs units    ${stats.commits} commits for ${stats.units} units (${(stats.units / Math.max(1, stats.commits)).toFixed(1)} units per fsync)`);
console.log(`  ack latency         p50 ${p(0.5).toFixed(2)} ms, p99 ${p(0.99).toFixed(2)} ms`);
console.log(`  integrity           ${check.ok ? 'ok' : check.messages.join('; ')}`);
console.log(`  messages in db      ${total.n} (${before.n} before this run)`);
console.log('  closed cleanly: queue drained, WAL checkpointed and truncated');
