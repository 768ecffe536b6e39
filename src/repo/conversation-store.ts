/**
 * `ConversationStore`: conversations and their messages, the core data of a chat app.
 *
 * Tables (created by `conversationMigrations()`):
 * - `conversations(id TEXT PK, title, metadata JSON, created_at, updated_at)`
 * - `messages(id INTEGER PK AUTOINCREMENT, conversation_id → conversations ON DELETE CASCADE,
 *   role, content, token_count, created_at)`, indexed by `(conversation_id, created_at, id)`.
 * Both are STRICT tables; times are milliseconds since the Unix epoch. On PostgreSQL the same
 * tables use `bigint` for times and ids (an identity column for message ids) and check the
 * metadata with `json_typeof`.
 *
 * Invariants:
 * - Appending a message and bumping its conversation's `updated_at` is one unit (one
 *   `db.write()`): both happen or neither. `updated_at` never moves backwards (an imported
 *   message with an old `createdAt` leaves it alone).
 * - A message for a conversation that does not exist fails on the foreign key
 *   (`SqliteError`, `SQLITE_CONSTRAINT_FOREIGNKEY`, with a message naming the conversation) and
 *   changes nothing. Deleting a conversation deletes its messages in the same statement.
 * - Input errors (an oversize content, title or metadata; an unknown role; metadata that is
 *   not JSON) are caught before any SQL: `WalguardError` `INVALID_OPTION`, nothing written.
 * - Message ids only grow (AUTOINCREMENT; an identity on PostgreSQL): an id is never reused,
 *   even after deletes. On PostgreSQL a failed insert still uses up its id (sequences are
 *   not transactional), so ids may have gaps.
 */
import { randomUUID } from 'node:crypto';
import { type ColumnType, type Generated, type Kysely, sql } from 'kysely';
import { PostgresError, SqliteError, WalguardError } from '../errors.js';
import type { Walguard } from '../walguard.js';
import { type EngineSql, engineSql } from './engine-sql.js';
import type { MigrationSet } from './migrations.js';
import {
  type CriticalWrite,
  checkBytes,
  type DeferredWrite,
  type Page,
  Repository,
  requireTables,
  type WriteOptions,
} from './repository.js';

/** A JSON value. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue };

/** A JSON object: what conversation metadata is by default. */
export type JsonObject = { [key: string]: JsonValue };

/** The roles a message may have. */
export type MessageRole = 'system' | 'user' | 'assistant' | 'tool';

/** The roles, for checks. */
export const MESSAGE_ROLES: readonly MessageRole[] = Object.freeze([
  'system',
  'user',
  'assistant',
  'tool',
]);

/** The `conversations` table, as Kysely sees it. */
export interface ConversationsTable {
  /** Primary key: any non-empty string up to 200 characters (default: a random UUID). */
  id: string;
  /** The title ('' when none). */
  title: ColumnType<string, string | undefined, string>;
  /** JSON object text ('{}' when none); `json_valid` is checked by the table. */
  metadata: ColumnType<string, string | undefined, string>;
  /** Creation time, ms since the epoch. */
  created_at: number;
  /** Time of the last change or message, ms since the epoch. */
  updated_at: number;
}

/** The `messages` table, as Kysely sees it. */
export interface MessagesTable {
  /** Primary key, assigned by SQLite, never reused. */
  id: Generated<number>;
  /** The conversation (foreign key, ON DELETE CASCADE). */
  conversation_id: string;
  /** Who wrote it. */
  role: MessageRole;
  /** The text. */
  content: string;
  /** Tokens the message counts for (the app's tokenizer; 0 when unknown). */
  token_count: ColumnType<number, number | undefined, number>;
  /** Creation time, ms since the epoch. */
  created_at: number;
}

/** The tables of `ConversationStore`; add them to the app's `DB` interface to query them with `db.kysely`. */
export interface ConversationTables {
  conversations: ConversationsTable;
  messages: MessagesTable;
}

/** A conversation. */
export interface Conversation<M extends object = JsonObject> {
  id: string;
  title: string;
  metadata: M;
  /** ms since the epoch. */
  createdAt: number;
  /** ms since the epoch: the last change or message. */
  updatedAt: number;
}

/** A message. */
export interface Message {
  id: number;
  conversationId: string;
  role: MessageRole;
  content: string;
  tokenCount: number;
  /** ms since the epoch. */
  createdAt: number;
}

/** Input of `createConversation()`. */
export interface NewConversation<M extends object = JsonObject> {
  /** The id; default a random UUID. Non-empty, at most 200 characters. */
  id?: string;
  /** Default ''. */
  title?: string;
  /** Any JSON object; default `{}`. */
  metadata?: M;
  /** Default now (ms since the epoch). */
  createdAt?: number;
}

/** Input of `appendMessage()`. */
export interface NewMessage {
  role: MessageRole;
  content: string;
  /** Default 0. */
  tokenCount?: number;
  /** Default now (ms since the epoch). */
  createdAt?: number;
}

/** Options of `listMessages()`. */
export interface ListMessagesOptions {
  /** Most messages per page, integer >= 1. Default 50. */
  limit?: number;
  /** The `next` cursor of the previous page. */
  after?: string;
  /** `asc` (oldest first, default) or `desc` (newest first). */
  order?: 'asc' | 'desc';
}

/** Options of `listConversations()`. */
export interface ListConversationsOptions {
  /** Most conversations per page, integer >= 1. Default 50. */
  limit?: number;
  /** The `next` cursor of the previous page. */
  after?: string;
}

/** Options of `ConversationStore`. */
export interface ConversationStoreOptions {
  /** Largest message content, in UTF-8 bytes, integer >= 1. Default 1 MiB. */
  maxContentBytes?: number;
  /** Largest conversation title, in UTF-8 bytes, integer >= 1. Default 1 KiB. */
  maxTitleBytes?: number;
  /** Largest metadata, as JSON text in UTF-8 bytes, integer >= 2. Default 64 KiB. */
  maxMetadataBytes?: number;
}

const DEFAULTS = Object.freeze({
  maxContentBytes: 1024 * 1024,
  maxTitleBytes: 1024,
  maxMetadataBytes: 64 * 1024,
});

/** Most characters in a conversation id. */
const MAX_ID_LENGTH = 200;

/** The migrations of `ConversationStore`, as a set with its own migration table (`walguard_migration_conversations`). */
export function conversationMigrations(): MigrationSet {
  return {
    name: 'conversations',
    migrations: {
      '0001_conversations_and_messages': {
        async up(db: Kysely<unknown>): Promise<void> {
          const { name, int64 } = engineSql(db);
          const sqlite = name === 'sqlite';
          // SQLite's STRICT type checking; PostgreSQL checks types always.
          const strict = sql.raw(sqlite ? 'STRICT' : '');
          await db.schema
            .createTable('conversations')
            .addColumn('id', 'text', (c) =>
              c
                .primaryKey()
                .notNull()
                .check(sql.raw(`length(id) BETWEEN 1 AND ${MAX_ID_LENGTH}`)),
            )
            .addColumn('title', 'text', (c) => c.notNull().defaultTo(''))
            .addColumn('metadata', 'text', (c) =>
              c
                .notNull()
                .defaultTo('{}')
                .check(
                  sql.raw(
                    sqlite
                      ? "json_valid(metadata) AND json_type(metadata) = 'object'"
                      : "json_typeof(metadata::json) = 'object'",
                  ),
                ),
            )
            .addColumn('created_at', int64, (c) => c.notNull())
            .addColumn('updated_at', int64, (c) => c.notNull())
            .modifyEnd(strict)
            .execute();
          await db.schema
            .createIndex('conversations_by_updated')
            .on('conversations')
            .columns(['updated_at desc', 'id'])
            .execute();
          await db.schema
            .createTable('messages')
            .addColumn('id', int64, (c) =>
              sqlite
                ? c.primaryKey().autoIncrement()
                : c.primaryKey().generatedByDefaultAsIdentity(),
            )
            .addColumn('conversation_id', 'text', (c) =>
              c.notNull().references('conversations.id').onDelete('cascade'),
            )
            .addColumn('role', 'text', (c) =>
              c
                .notNull()
                .check(sql.raw(`role IN (${MESSAGE_ROLES.map((r) => `'${r}'`).join(', ')})`)),
            )
            .addColumn('content', 'text', (c) => c.notNull())
            .addColumn('token_count', int64, (c) =>
              c.notNull().defaultTo(0).check(sql.raw('token_count >= 0')),
            )
            .addColumn('created_at', int64, (c) => c.notNull())
            .modifyEnd(strict)
            .execute();
          await db.schema
            .createIndex('messages_by_conversation')
            .on('messages')
            .columns(['conversation_id', 'created_at', 'id'])
            .execute();
        },
      },
    },
  };
}

export class ConversationStore<M extends object = JsonObject> {
  /** The `conversations` repository, for queries the store does not offer. */
  readonly conversations: Repository<ConversationTables, 'conversations', 'id'>;
  /** The `messages` repository, for queries the store does not offer. */
  readonly messages: Repository<ConversationTables, 'messages', 'id'>;
  /** The options in force, frozen. */
  readonly options: Readonly<Required<ConversationStoreOptions>>;
  readonly #db: Walguard<ConversationTables>;
  /** The engine's spelling of `greatest` (see `engine-sql.ts`). */
  readonly #sql: EngineSql;

  private constructor(
    db: Walguard<ConversationTables>,
    options: Required<ConversationStoreOptions>,
  ) {
    this.#db = db;
    this.#sql = engineSql(db.kysely as Kysely<unknown>);
    this.options = Object.freeze(options);
    const maxValueBytes = Math.max(
      options.maxContentBytes,
      options.maxTitleBytes,
      options.maxMetadataBytes,
    );
    this.conversations = new Repository(db, 'conversations', { primaryKey: 'id', maxValueBytes });
    this.messages = new Repository(db, 'messages', { primaryKey: 'id', maxValueBytes });
  }

  /**
   * A store on `db`. Checks the options and that the tables exist (run
   * `conversationMigrations()` first); throws `INVALID_OPTION` otherwise.
   */
  static async open<DB, M extends object = JsonObject>(
    db: Walguard<DB>,
    options: ConversationStoreOptions = {},
  ): Promise<ConversationStore<M>> {
    const resolved: Required<ConversationStoreOptions> = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as (keyof ConversationStoreOptions)[]) {
      const value = options[key];
      if (value === undefined) continue;
      const min = key === 'maxMetadataBytes' ? 2 : 1;
      if (!Number.isSafeInteger(value) || value < min) {
        throw invalid(`Expected \`${key}\` to be an integer >= ${min}, got \`${String(value)}\``);
      }
      resolved[key] = value;
    }
    const loose = db as unknown as Walguard<ConversationTables>;
    await requireTables(loose, ['conversations', 'messages']);
    return new ConversationStore<M>(loose, resolved);
  }

  /** Creates a conversation (one critical unit) and resolves with it once durable. */
  async createConversation(input: NewConversation<M> = {}): Promise<Conversation<M>> {
    const now = input.createdAt ?? Date.now();
    checkTime(now, 'createdAt');
    const id = input.id ?? randomUUID();
    checkId(id);
    const row = await this.conversations.insert({
      id,
      title: this.#title(input.title ?? ''),
      metadata: this.#metadata(input.metadata),
      created_at: now,
      updated_at: now,
    });
    return this.#conversation(row);
  }

  /** The conversation, or `undefined`. */
  async getConversation(id: string): Promise<Conversation<M> | undefined> {
    const row = await this.conversations.findById(id);
    return row === undefined ? undefined : this.#conversation(row);
  }

  /**
   * Conversations, most recently updated first, a page at a time. A conversation updated while
   * you page moves to the front: it may show up again on the first page, not on later ones.
   */
  async listConversations(options: ListConversationsOptions = {}): Promise<Page<Conversation<M>>> {
    const page = await this.conversations.find({
      orderBy: [{ column: 'updated_at', direction: 'desc' }],
      limit: options.limit ?? 50,
      after: options.after,
    });
    return { rows: page.rows.map((r) => this.#conversation(r)), next: page.next };
  }

  /** Changes a conversation's title and/or metadata (replaced whole) and bumps `updated_at`; `undefined` when there is none. */
  async updateConversation(
    id: string,
    patch: { title?: string; metadata?: M },
  ): Promise<Conversation<M> | undefined> {
    const set: { title?: string; metadata?: string } = {};
    if (patch.title !== undefined) set.title = this.#title(patch.title);
    if (patch.metadata !== undefined) set.metadata = this.#metadata(patch.metadata);
    if (set.title === undefined && set.metadata === undefined) {
      throw invalid('Expected a patch with `title` or `metadata`; nothing was written');
    }
    const now = Date.now();
    const result = await this.#db.write((k) =>
      k
        .updateTable('conversations')
        .set((eb) => ({
          ...set,
          updated_at: eb.fn(this.#sql.greatest, [eb.ref('updated_at'), eb.val(now)]),
        }))
        .where('id', '=', id)
        .returningAll(),
    );
    const row = result.rows[0];
    return row === undefined ? undefined : this.#conversation(row);
  }

  /** Deletes a conversation and, in the same unit, all its messages; `true` when it existed. */
  deleteConversation(id: string): Promise<boolean> {
    return this.conversations.delete(id);
  }

  /**
   * Appends a message and bumps the conversation's `updated_at`, as one unit. Critical (default):
   * resolves with the message once durable. Deferred: resolves at once; a failure (such as a
   * missing conversation) is reported through the `error` event, not to the caller.
   */
  appendMessage(
    conversationId: string,
    message: NewMessage,
    options?: CriticalWrite,
  ): Promise<Message>;
  appendMessage(conversationId: string, message: NewMessage, options: DeferredWrite): Promise<void>;
  appendMessage(
    conversationId: string,
    message: NewMessage,
    options?: WriteOptions,
  ): Promise<Message | undefined>;
  appendMessage(
    conversationId: string,
    message: NewMessage,
    options?: WriteOptions,
  ): Promise<unknown> {
    const appended = this.appendMessages(conversationId, [message], options);
    return options?.durability === 'deferred'
      ? appended
      : appended.then((messages) => messages?.[0]);
  }

  /**
   * Appends several messages to one conversation and bumps its `updated_at`, all as ONE unit:
   * every message or none.
   */
  appendMessages(
    conversationId: string,
    messages: readonly NewMessage[],
    options?: CriticalWrite,
  ): Promise<Message[]>;
  appendMessages(
    conversationId: string,
    messages: readonly NewMessage[],
    options: DeferredWrite,
  ): Promise<void>;
  appendMessages(
    conversationId: string,
    messages: readonly NewMessage[],
    options?: WriteOptions,
  ): Promise<Message[] | undefined>;
  appendMessages(
    conversationId: string,
    messages: readonly NewMessage[],
    options?: WriteOptions,
  ): Promise<unknown> {
    let deferred: boolean;
    try {
      deferred = durabilityOf(options) === 'deferred';
    } catch (error) {
      return Promise.reject(error);
    }
    // Built (and checked) inside write()/defer(): a deferred append with bad input is reported
    // like any deferred failure (error event, logger), never as an unhandled rejection.
    const build = (k: Kysely<ConversationTables>) => {
      if (typeof conversationId !== 'string') {
        throw invalid(`Expected \`conversationId\` to be a string, got ${typeof conversationId}`);
      }
      if (!Array.isArray(messages) || messages.length === 0) {
        throw invalid('Expected `messages` to be a non-empty array; nothing was written');
      }
      const rows = messages.map((m, i) => this.#messageRow(conversationId, m, i));
      const latest = Math.max(...rows.map((r) => r.created_at));
      return [
        ...rows.map((row) => k.insertInto('messages').values(row).returningAll()),
        k
          .updateTable('conversations')
          .set((eb) => ({
            updated_at: eb.fn(this.#sql.greatest, [eb.ref('updated_at'), eb.val(latest)]),
          }))
          .where('id', '=', conversationId),
      ];
    };
    if (deferred) return this.#db.defer(build);
    return this.#db.write(build).then(
      (results) => results.slice(0, -1).map((r) => toMessage(r.rows[0] as MessageRow)),
      (error: unknown) => {
        throw explainForeignKey(error, conversationId);
      },
    );
  }

  /** The message, or `undefined`. */
  async getMessage(id: number): Promise<Message | undefined> {
    const row = await this.messages.findById(id);
    return row === undefined ? undefined : toMessage(row);
  }

  /**
   * A conversation's messages in time order (`created_at`, then id), a page at a time (keyset
   * pagination: pages stay stable while messages are appended).
   */
  async listMessages(
    conversationId: string,
    options: ListMessagesOptions = {},
  ): Promise<Page<Message>> {
    const direction = options.order ?? 'asc';
    if (direction !== 'asc' && direction !== 'desc') {
      throw invalid(`Expected \`order\` to be 'asc' or 'desc', got \`${String(direction)}\``);
    }
    const page = await this.messages.find({
      where: { conversation_id: conversationId },
      orderBy: [
        { column: 'created_at', direction },
        { column: 'id', direction },
      ],
      limit: options.limit ?? 50,
      after: options.after,
    });
    return { rows: page.rows.map(toMessage), next: page.next };
  }

  /** How many messages a conversation has. */
  countMessages(conversationId: string): Promise<number> {
    return this.messages.count({ conversation_id: conversationId });
  }

  /** Deletes one message; `true` when it existed. The conversation's `updated_at` is left alone. */
  deleteMessage(id: number): Promise<boolean> {
    return this.messages.delete(id);
  }

  #messageRow(conversationId: string, m: NewMessage, i: number) {
    const where = `messages[${i}]`;
    if (typeof m !== 'object' || m === null) {
      throw invalid(`Expected \`${where}\` to be an object with \`role\` and \`content\``);
    }
    if (!MESSAGE_ROLES.includes(m.role)) {
      throw invalid(
        `Expected \`${where}.role\` to be one of ${MESSAGE_ROLES.map((r) => `'${r}'`).join(', ')}, got \`${String(m.role)}\`; nothing was written`,
      );
    }
    if (typeof m.content !== 'string') {
      throw invalid(`Expected \`${where}.content\` to be a string, got ${typeof m.content}`);
    }
    checkBytes(m.content, this.options.maxContentBytes, `${where}.content`, 'maxContentBytes');
    const tokenCount = m.tokenCount ?? 0;
    if (!Number.isSafeInteger(tokenCount) || tokenCount < 0) {
      throw invalid(
        `Expected \`${where}.tokenCount\` to be an integer >= 0, got \`${String(tokenCount)}\``,
      );
    }
    const createdAt = m.createdAt ?? Date.now();
    checkTime(createdAt, `${where}.createdAt`);
    return {
      conversation_id: conversationId,
      role: m.role,
      content: m.content,
      token_count: tokenCount,
      created_at: createdAt,
    };
  }

  #title(title: string): string {
    if (typeof title !== 'string')
      throw invalid(`Expected \`title\` to be a string, got ${typeof title}`);
    checkBytes(title, this.options.maxTitleBytes, 'title', 'maxTitleBytes');
    return title;
  }

  #metadata(metadata: M | undefined): string {
    if (metadata === undefined) return '{}';
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw invalid('Expected `metadata` to be a JSON object; nothing was written');
    }
    let text: string;
    try {
      text = JSON.stringify(metadata);
    } catch (error) {
      throw invalid(
        `Expected \`metadata\` to be JSON-serialisable: ${(error as Error).message}; nothing was written`,
      );
    }
    checkBytes(text, this.options.maxMetadataBytes, 'metadata (as JSON)', 'maxMetadataBytes');
    return text;
  }

  #conversation(row: ConversationRow): Conversation<M> {
    return {
      id: row.id,
      title: row.title,
      metadata: JSON.parse(row.metadata) as M,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    };
  }
}

type ConversationRow = {
  id: string;
  title: string;
  metadata: string;
  created_at: number;
  updated_at: number;
};
type MessageRow = {
  id: number;
  conversation_id: string;
  role: MessageRole;
  content: string;
  token_count: number;
  created_at: number;
};

function toMessage(row: MessageRow): Message {
  return {
    id: row.id,
    conversationId: row.conversation_id,
    role: row.role,
    content: row.content,
    tokenCount: row.token_count,
    createdAt: row.created_at,
  };
}

/** Rewrites a foreign-key failure of an append so that it names the conversation. */
function explainForeignKey(error: unknown, conversationId: string): unknown {
  const why = (e: Error) =>
    `${e.message}: conversation ${JSON.stringify(conversationId)} does not exist; nothing was written`;
  if (error instanceof SqliteError && error.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
    return new SqliteError(why(error), error.code, error.rawCode);
  }
  if (error instanceof PostgresError && error.code === '23503') {
    return new PostgresError(why(error), error.code, error);
  }
  return error;
}

function durabilityOf(options: { durability?: string } | undefined): 'critical' | 'deferred' {
  const d = options?.durability ?? 'critical';
  if (d !== 'critical' && d !== 'deferred') {
    throw invalid(`Expected \`durability\` to be 'critical' or 'deferred', got \`${String(d)}\``);
  }
  return d;
}

function checkId(id: unknown): void {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw invalid(
      `Expected \`id\` to be a non-empty string of at most ${MAX_ID_LENGTH} characters; nothing was written`,
    );
  }
}

function checkTime(value: unknown, what: string): void {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw invalid(
      `Expected \`${what}\` to be ms since the epoch (an integer >= 0), got \`${String(value)}\``,
    );
  }
}

function invalid(message: string): WalguardError {
  return new WalguardError('INVALID_OPTION', message);
}
