/**
 * The chat workload's backend the way the seed app wrote it: `@libsql/client` on the local
 * file, `journal_mode=WAL` and `synchronous=NORMAL` set once after `createClient`, each
 * message and its conversation's `updated_at` in one `batch(…, 'write')` (one transaction, its
 * own COMMIT), every other write an autocommit `execute()`. Same tables as walguard's stores
 * (the database starts from a file their migrations created), same SQL effects.
 *
 * The client is pinned to one connection (`concurrency: 1`): @libsql/client 0.18 keeps a pool
 * in local mode, and a PRAGMA reaches only the connection that ran it, so with the default pool
 * most writes would run at SQLite's default FULL and "naive NORMAL" would not be NORMAL
 * (bench/drivers/naive-client-driver.ts measures it). {@link openNaiveChat} reads the level
 * back through the client; the workload reads it again at the end.
 */
import { type Client, createClient } from '@libsql/client';
import type { ChatBackend } from './chat-workload.js';

/** The client and the chat backend over it. */
export interface NaiveChat {
  client: Client;
  backend: ChatBackend;
  /** `PRAGMA synchronous` read back through the client (1 = NORMAL). */
  synchronous(): Promise<number>;
}

/** Opens `path` the seed app's way; see the file header. */
export async function openNaiveChat(path: string): Promise<NaiveChat> {
  const client = createClient({ url: `file:${path}`, concurrency: 1 });
  await client.execute('PRAGMA journal_mode = WAL');
  await client.execute('PRAGMA synchronous = NORMAL');
  const synchronous = async () => Number((await client.execute('PRAGMA synchronous')).rows[0]?.[0]);
  const level = await synchronous();
  if (level !== 1) {
    client.close();
    throw new Error(`naive client: PRAGMA synchronous reads back ${level}, not 1 (NORMAL)`);
  }
  const backend: ChatBackend = {
    async openConversation(id, title, persona) {
      const now = Date.now();
      await client.execute({
        sql: 'INSERT OR IGNORE INTO conversations (id, title, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
        args: [id, title, JSON.stringify({ persona }), now, now],
      });
      const rs = await client.execute({
        sql: 'SELECT count(*) FROM messages WHERE conversation_id = ?',
        args: [id],
      });
      return Number(rs.rows[0]?.[0]);
    },
    async appendMessage(conversationId, message) {
      const now = Date.now();
      const [inserted] = await client.batch(
        [
          {
            sql: 'INSERT INTO messages (conversation_id, role, content, token_count, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id',
            args: [conversationId, message.role, message.content, message.tokenCount, now],
          },
          {
            sql: 'UPDATE conversations SET updated_at = max(updated_at, ?) WHERE id = ?',
            args: [now, conversationId],
          },
        ],
        'write',
      );
      return Number(inserted!.rows[0]?.[0]);
    },
    async recall(embedding, k) {
      // walguard's MemoryStore scans too below 2,000 embedded memories.
      const rs = await client.execute({
        sql: 'SELECT id, content FROM memories WHERE embedding IS NOT NULL ORDER BY vector_distance_cos(embedding, ?), id LIMIT ?',
        args: [vectorBlob(embedding), k],
      });
      const ids = rs.rows.map((r) => Number(r[0]));
      if (ids.length > 0) {
        await client.execute({
          sql: `UPDATE memories SET last_accessed_at = max(coalesce(last_accessed_at, 0), ?), access_count = access_count + 1 WHERE id IN (${ids.map(() => '?').join(', ')})`,
          args: [Date.now(), ...ids],
        });
      }
      return rs.rows.map((r) => String(r[1]));
    },
    async addMemory(memory) {
      const rs = await client.execute({
        sql: 'INSERT INTO memories (kind, content, importance, embedding, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id',
        args: [
          memory.kind,
          memory.content,
          memory.importance,
          vectorBlob(memory.embedding),
          Date.now(),
        ],
      });
      return Number(rs.rows[0]?.[0]);
    },
  };
  return { client, backend, synchronous };
}

/** An embedding as the `F32_BLOB` bytes libSQL stores (little-endian float32s). */
function vectorBlob(embedding: Float32Array): Uint8Array {
  return new Uint8Array(embedding.buffer, embedding.byteOffset, embedding.byteLength);
}
