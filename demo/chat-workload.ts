/**
 * The demo's chat workload, written once against {@link ChatBackend} so that `npm run demo`
 * (walguard) and `npm run demo:power-cut` (walguard, then the seed app's naive client) run the
 * very same turns.
 *
 * Several chat sessions run concurrently. Each turn:
 * - the user's message is appended (critical: once the UI shows it as sent it must never be
 *   lost; the message and the conversation's `updated_at` are one unit);
 * - the companion recalls the memories nearest to the message (a vector search; the backend
 *   records the access times);
 * - the assistant's reply is appended (critical);
 * - every fifth turn a new memory is stored with its embedding (critical).
 */

/** Embedding dimensions of the demo's toy embedder. */
export const DIMENSIONS = 64;

/** A message to append. */
export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
  tokenCount: number;
}

/** A memory to store. */
export interface ChatMemory {
  kind: string;
  content: string;
  importance: number;
  embedding: Float32Array;
}

/** What the workload needs of a database: the few calls a companion app makes. */
export interface ChatBackend {
  /** Creates the conversation when it does not exist; resolves with its message count. */
  openConversation(id: string, title: string, persona: string): Promise<number>;
  /** Appends a message and bumps the conversation's `updated_at`, as one unit; resolves with the message id once acknowledged. */
  appendMessage(conversationId: string, message: ChatMessage): Promise<number>;
  /** The contents of the `k` memories nearest to `embedding`, nearest first; records the access. */
  recall(embedding: Float32Array, k: number): Promise<string[]>;
  /** Stores a memory; resolves with its id once acknowledged. */
  addMemory(memory: ChatMemory): Promise<number>;
}

/** Options of {@link runChat}. */
export interface ChatOptions {
  /** Concurrent sessions (conversations `session-0` …), integer >= 1. */
  sessions: number;
  /** Stop starting turns after this many seconds. */
  seconds: number;
  /** Polled before each turn: `true` stops the session after the turn in flight. */
  stopped?: () => boolean;
  /** Called when a message is acknowledged, with its id and how long the append took (ms). */
  onMessage?: (id: number, ms: number) => void;
  /** Called when a memory is acknowledged, with its id and how long the add took (ms). */
  onMemory?: (id: number, ms: number) => void;
}

/** What {@link runChat} did, updated as it runs (for progress lines). */
export interface ChatCounts {
  /** Messages acknowledged. */
  messages: number;
  /** Memories acknowledged. */
  memories: number;
  /** Recalls (vector searches) made. */
  recalls: number;
  /** When the turns started (`performance.now()`), once every session's conversation was open. */
  started: number;
}

const TOPICS = [
  ['tea', 'garden', 'morning', 'rain', 'book'],
  ['guitar', 'song', 'concert', 'band', 'practice'],
  ['hiking', 'mountain', 'trail', 'weather', 'boots'],
  ['cooking', 'pasta', 'recipe', 'dinner', 'basil'],
  ['work', 'deadline', 'meeting', 'project', 'coffee'],
  ['cat', 'vet', 'toy', 'nap', 'window'],
];

/** A toy embedder: hashed bag of words, normalised. Similar words → similar vectors. */
export function embed(text: string): Float32Array {
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

async function timed(work: Promise<number>, report?: (id: number, ms: number) => void) {
  const t0 = performance.now();
  const id = await work;
  report?.(id, performance.now() - t0);
}

/**
 * Opens the sessions' conversations, then runs their turns for `seconds` (or until
 * `stopped()`), each as described in the file header. `counts` is updated as
 * acknowledgements arrive; resolves with it.
 */
export async function runChat(
  backend: ChatBackend,
  options: ChatOptions,
  counts: ChatCounts = { messages: 0, memories: 0, recalls: 0, started: performance.now() },
): Promise<ChatCounts> {
  // The same conversations on every run: a rerun continues them.
  const ids = Array.from({ length: options.sessions }, (_, n) => `session-${n}`);
  const firstTurns = await Promise.all(
    ids.map((id, n) =>
      backend.openConversation(id, `Chat ${n}`, n % 2 === 0 ? 'gardener' : 'musician'),
    ),
  );
  counts.started = performance.now();
  const deadline = counts.started + options.seconds * 1000;
  const session = async (n: number): Promise<void> => {
    const id = ids[n]!;
    const topic = TOPICS[n % TOPICS.length]!;
    let turn = firstTurns[n]!;
    while (options.stopped?.() !== true && performance.now() < deadline) {
      const words = [topic[turn % 5]!, topic[(turn * 3 + 1) % 5]!, topic[(turn * 7 + 2) % 5]!];
      const said = `I keep thinking about the ${words[0]} and the ${words[1]}, maybe ${words[2]} later?`;
      await timed(
        backend.appendMessage(id, { role: 'user', content: said, tokenCount: 18 }),
        options.onMessage,
      );
      counts.messages++;
      const recalled = await backend.recall(embed(said), 3);
      counts.recalls++;
      const reply =
        recalled.length > 0
          ? `You told me before: "${recalled[0]}". How is the ${words[0]} going?`
          : `Tell me more about the ${words[0]}.`;
      await timed(
        backend.appendMessage(id, { role: 'assistant', content: reply, tokenCount: 16 }),
        options.onMessage,
      );
      counts.messages++;
      if (turn % 5 === 0) {
        const content = `Session ${n} likes the ${words[0]} with ${words[1]} (turn ${turn})`;
        await timed(
          backend.addMemory({
            kind: turn % 10 === 0 ? 'preference' : 'fact',
            content,
            importance: ((turn * 37) % 100) / 100,
            embedding: embed(content),
          }),
          options.onMemory,
        );
        counts.memories++;
      }
      turn += 2;
      if (turn % 50 === 0) await new Promise((r) => setImmediate(r));
    }
  };
  await Promise.all(Array.from({ length: options.sessions }, (_, n) => session(n)));
  return counts;
}
