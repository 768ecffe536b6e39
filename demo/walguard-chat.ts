/**
 * The chat workload's backend through walguard: `ConversationStore` and `MemoryStore` on one
 * `openDatabase()`. Every message and memory is a critical unit (acknowledged once its batch's
 * `synchronous=FULL` COMMIT returned); recall's access times are deferred writes (losing the
 * last 100 ms of "last accessed" in a power cut is harmless, paying an fsync for each is not).
 */
import type { Walguard } from '../src/index.js';
import {
  ConversationStore,
  type ConversationTables,
  conversationMigrations,
  MemoryStore,
  type MemoryTables,
  memoryMigrations,
} from '../src/repo/stores.js';
import { type ChatBackend, DIMENSIONS } from './chat-workload.js';

/** The demo database's tables. */
export type ChatDB = ConversationTables & MemoryTables;

/** The migrations of the demo database (conversations and memories). */
export const chatMigrations = () => [
  conversationMigrations(),
  memoryMigrations({ dimensions: DIMENSIONS }),
];

/** The stores of an open demo database, and the chat backend over them. */
export interface WalguardChat {
  conversations: ConversationStore<{ persona: string }>;
  memories: MemoryStore;
  backend: ChatBackend;
}

/** Opens the stores on `db` (migrated with {@link chatMigrations}). */
export async function walguardChat(db: Walguard<ChatDB>): Promise<WalguardChat> {
  const conversations = await ConversationStore.open<ChatDB, { persona: string }>(db);
  const memories = await MemoryStore.open(db, { dimensions: DIMENSIONS });
  const backend: ChatBackend = {
    async openConversation(id, title, persona) {
      if ((await conversations.getConversation(id)) === undefined) {
        await conversations.createConversation({ id, title, metadata: { persona } });
      }
      return conversations.countMessages(id);
    },
    async appendMessage(conversationId, message) {
      return (await conversations.appendMessage(conversationId, message)).id;
    },
    async recall(embedding, k) {
      return (await memories.recall(embedding, { k })).map((m) => m.content);
    },
    async addMemory(memory) {
      return (await memories.add(memory)).id;
    },
  };
  return { conversations, memories, backend };
}
