import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { WalguardError } from '../../src/index.js';
import {
  ConversationStore,
  type ConversationTables,
  conversationMigrations,
} from '../../src/repo/conversation-store.js';
import { runMigrations } from '../../src/repo/migrations.js';
import { delay } from '../helpers.js';
import { describeEngines } from './engines.js';

describeEngines('ConversationStore', (engine) => {
  async function setup(
    options: Parameters<typeof engine.open>[0] = {},
    storeOptions: Parameters<typeof ConversationStore.open>[1] = {},
  ) {
    const db = await engine.open<ConversationTables>(options);
    await runMigrations(db, [conversationMigrations()]);
    const store = await ConversationStore.open<ConversationTables, { topic?: string; n?: number }>(
      db,
      storeOptions,
    );
    return { db, store };
  }

  const count = async (db: object, table: string) =>
    (await engine.fresh<{ n: number }>(db, `select count(*) as n from ${table}`))[0]!.n;
  const readFresh = (db: object, query: string) => engine.fresh(db, query);

  describe('ConversationStore conversations', () => {
    it('creates, reads, updates and lists conversations with their metadata', async () => {
      const { db, store } = await setup();
      const c = await store.createConversation({
        id: 'c1',
        title: 'Trip',
        metadata: { topic: 'travel' },
        createdAt: 1000,
      });
      expect(c).toEqual({
        id: 'c1',
        title: 'Trip',
        metadata: { topic: 'travel' },
        createdAt: 1000,
        updatedAt: 1000,
      });
      const generated = await store.createConversation();
      expect(generated.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(generated.metadata).toEqual({});
      expect(await store.getConversation('c1')).toEqual(c);
      expect(await store.getConversation('nope')).toBeUndefined();
      const updated = await store.updateConversation('c1', { title: 'Trip 2', metadata: { n: 2 } });
      expect(updated).toMatchObject({ title: 'Trip 2', metadata: { n: 2 }, createdAt: 1000 });
      expect(updated!.updatedAt).toBeGreaterThan(1000);
      expect(await store.updateConversation('nope', { title: 'x' })).toBeUndefined();
      expect(
        await readFresh(db, "select title, metadata from conversations where id = 'c1'"),
      ).toEqual([{ title: 'Trip 2', metadata: '{"n":2}' }]);
    });

    it('lists conversations most recently updated first, a page at a time', async () => {
      const { store } = await setup();
      for (let i = 0; i < 7; i++)
        await store.createConversation({ id: `c${i}`, createdAt: 100 + i });
      // A message bumps c2 to the front.
      await store.appendMessage('c2', { role: 'user', content: 'hi', createdAt: 500 });
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await store.listConversations({ limit: 3, after });
        expect(page.rows.length).toBeLessThanOrEqual(3);
        seen.push(...page.rows.map((c) => c.id));
        after = page.next;
      } while (after !== undefined);
      expect(seen).toEqual(['c2', 'c6', 'c5', 'c4', 'c3', 'c1', 'c0']);
    });

    it('deleting a conversation deletes its messages, and only its own', async () => {
      const { db, store } = await setup();
      await store.createConversation({ id: 'a' });
      await store.createConversation({ id: 'b' });
      await store.appendMessages('a', [
        { role: 'user', content: '1' },
        { role: 'assistant', content: '2' },
      ]);
      await store.appendMessage('b', { role: 'user', content: 'kept' });
      expect(await store.deleteConversation('a')).toBe(true);
      expect(await store.deleteConversation('a')).toBe(false);
      expect(await readFresh(db, 'select conversation_id, content from messages')).toEqual([
        { conversation_id: 'b', content: 'kept' },
      ]);
      expect(await count(db, 'conversations')).toBe(1);
    });

    it('refuses bad conversation input with INVALID_OPTION and writes nothing', async () => {
      const { db, store } = await setup({}, { maxTitleBytes: 10, maxMetadataBytes: 32 });
      const bad = [
        store.createConversation({ id: '' }),
        store.createConversation({ id: 'x'.repeat(201) }),
        store.createConversation({ title: 'much too long a title' }),
        store.createConversation({ metadata: { topic: 'x'.repeat(40) } }),
        store.createConversation({ metadata: { n: 1n } as never }),
        store.createConversation({ metadata: ['array'] as never }),
        store.createConversation({ createdAt: -1 }),
      ];
      for (const attempt of bad) {
        await expect(attempt).rejects.toMatchObject({ code: 'INVALID_OPTION' });
      }
      await expect(store.createConversation({ title: 'much too long a title' })).rejects.toThrow(
        'Expected `title` to be at most 10 bytes (maxTitleBytes), got 21 bytes; nothing was written',
      );
      await store.createConversation({ id: 'dup' });
      await expect(store.createConversation({ id: 'dup' })).rejects.toMatchObject({
        code: engine.code.primaryKey,
      });
      expect(await count(db, 'conversations')).toBe(1);
    });

    it('open() refuses a database without its tables', async () => {
      const db = await engine.open();
      await expect(ConversationStore.open(db)).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: expect.stringContaining('conversations, messages do not exist'),
      });
      await expect(ConversationStore.open(db, { maxContentBytes: 0 })).rejects.toThrow(
        'Expected `maxContentBytes` to be an integer >= 1',
      );
    });
  });

  describe('ConversationStore messages', () => {
    it('appending a message also bumps updated_at, as one unit, and resolves once durable', async () => {
      const { db, store } = await setup();
      await store.createConversation({ id: 'c', createdAt: 1000 });
      const units = db.stats().units;
      const m = await store.appendMessage('c', {
        role: 'user',
        content: 'hello',
        tokenCount: 2,
        createdAt: 2000,
      });
      expect(m).toEqual({
        id: 1,
        conversationId: 'c',
        role: 'user',
        content: 'hello',
        tokenCount: 2,
        createdAt: 2000,
      });
      expect(db.stats().units - units).toBe(1);
      expect(await readFresh(db, 'select updated_at from conversations')).toEqual([
        { updated_at: 2000 },
      ]);
      // An older (imported) message never moves updated_at backwards.
      await store.appendMessage('c', { role: 'assistant', content: 'old', createdAt: 1500 });
      expect((await store.getConversation('c'))!.updatedAt).toBe(2000);
      expect(await store.getMessage(m.id)).toEqual(m);
      expect(await store.countMessages('c')).toBe(2);
    });

    it('the message and the updated_at bump are all or nothing', async () => {
      const { db, store } = await setup();
      await store.createConversation({ id: 'frozen', title: 'frozen', createdAt: 1000 });
      // Make the second statement of the unit (the bump) fail.
      if (engine.name === 'sqlite') {
        await sql`create trigger no_bump before update on conversations when old.title = 'frozen'
        begin select raise(abort, 'frozen conversation'); end`.execute(db.kysely);
      } else {
        await sql`create function no_bump() returns trigger language plpgsql as $$
        begin raise exception 'frozen conversation'; end $$`.execute(db.kysely);
        await sql`create trigger no_bump before update on conversations
        for each row when (old.title = 'frozen') execute function no_bump()`.execute(db.kysely);
      }
      await expect(
        store.appendMessage('frozen', { role: 'user', content: 'lost?' }),
      ).rejects.toMatchObject({ message: expect.stringContaining('frozen conversation') });
      expect(await count(db, 'messages')).toBe(0);
      expect(await readFresh(db, 'select updated_at from conversations')).toEqual([
        { updated_at: 1000 },
      ]);
    });

    it('a message for a missing conversation fails on the foreign key, names it, and changes nothing', async () => {
      const { db, store } = await setup();
      await store.createConversation({ id: 'real' });
      const attempt = store.appendMessages('ghost', [
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ]);
      await expect(attempt).rejects.toBeInstanceOf(engine.SqlError);
      await expect(attempt).rejects.toMatchObject({
        code: engine.code.foreignKey,
        ...(engine.name === 'sqlite' ? { rawCode: 787 } : { constraint: expect.any(String) }),
        message: expect.stringContaining(
          'conversation "ghost" does not exist; nothing was written',
        ),
      });
      expect(await count(db, 'messages')).toBe(0);
      // The store goes on: the next append works and gets the next id (PostgreSQL's sequence
      // is not transactional: the failed first insert used id 1).
      const m = await store.appendMessage('real', { role: 'user', content: 'ok' });
      expect(m.id).toBe(engine.name === 'sqlite' ? 1 : 2);
    });

    it('refuses bad messages before any SQL: role, oversize content, token count', async () => {
      const { db, store } = await setup({}, { maxContentBytes: 100 });
      await store.createConversation({ id: 'c' });
      const units = db.stats().units;
      await expect(
        store.appendMessage('c', { role: 'robot' as never, content: 'x' }),
      ).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: expect.stringContaining("Expected `messages[0].role` to be one of 'system'"),
      });
      await expect(
        store.appendMessages('c', [
          { role: 'user', content: 'fine' },
          { role: 'user', content: '€'.repeat(40) },
        ]),
      ).rejects.toThrow(
        'Expected `messages[1].content` to be at most 100 bytes (maxContentBytes), got 120 bytes; nothing was written',
      );
      await expect(
        store.appendMessage('c', { role: 'user', content: 'x', tokenCount: -1 }),
      ).rejects.toBeInstanceOf(WalguardError);
      await expect(store.appendMessages('c', [])).rejects.toMatchObject({ code: 'INVALID_OPTION' });
      expect(db.stats().units).toBe(units);
      expect(await count(db, 'messages')).toBe(0);
    });

    it('lists messages in time order, a page at a time, at every page boundary', async () => {
      const { store } = await setup();
      await store.createConversation({ id: 'other' });
      await store.appendMessage('other', { role: 'user', content: 'not mine' });
      for (const total of [0, 1, 4, 5, 6, 10, 11]) {
        const id = `c${total}`;
        await store.createConversation({ id });
        if (total > 0) {
          // Pairs share a created_at: ids break the tie.
          await store.appendMessages(
            id,
            Array.from({ length: total }, (_, i) => ({
              role: 'user' as const,
              content: `m${i}`,
              createdAt: 1000 + Math.floor(i / 2),
            })),
          );
        }
        for (const order of ['asc', 'desc'] as const) {
          const pages: string[][] = [];
          let after: string | undefined;
          do {
            const page = await store.listMessages(id, { limit: 5, after, order });
            pages.push(page.rows.map((m) => m.content));
            after = page.next;
          } while (after !== undefined);
          const expected = Array.from({ length: total }, (_, i) => `m${i}`);
          if (order === 'desc') expected.reverse();
          expect(pages.flat()).toEqual(expected);
          expect(pages.length).toBe(Math.max(1, Math.ceil(total / 5)));
        }
      }
    });

    it('pages stay stable while messages are appended between reads', async () => {
      const { store } = await setup();
      await store.createConversation({ id: 'c' });
      for (let i = 0; i < 6; i++) {
        await store.appendMessage('c', { role: 'user', content: `m${i}`, createdAt: 1000 + i });
      }
      const first = await store.listMessages('c', { limit: 4 });
      await store.appendMessage('c', { role: 'user', content: 'm6', createdAt: 2000 });
      const second = await store.listMessages('c', { limit: 4, after: first.next });
      expect([...first.rows, ...second.rows].map((m) => m.content)).toEqual(
        Array.from({ length: 7 }, (_, i) => `m${i}`),
      );
      expect(second.next).toBeUndefined();
    });

    it('concurrent appends from many sessions are all kept, each conversation ends at its latest time', async () => {
      const { db, store } = await setup();
      const ids = ['a', 'b', 'c', 'd'];
      for (const id of ids) await store.createConversation({ id, createdAt: 1 });
      await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          store.appendMessage(ids[i % 4]!, {
            role: i % 2 ? 'assistant' : 'user',
            content: `turn ${i}`,
            createdAt: 10_000 + i,
          }),
        ),
      );
      expect(db.stats().commits).toBeLessThan(400);
      expect(
        await readFresh(
          db,
          'select c.id, c.updated_at, count(m.id) as n from conversations c join messages m on m.conversation_id = c.id group by c.id order by c.id',
        ),
      ).toEqual([
        { id: 'a', updated_at: 10_396, n: 100 },
        { id: 'b', updated_at: 10_397, n: 100 },
        { id: 'c', updated_at: 10_398, n: 100 },
        { id: 'd', updated_at: 10_399, n: 100 },
      ]);
    });

    it('deferred appends resolve at once, are applied after a flush, and report failures as events', async () => {
      const { db, store } = await setup({ deferredFlushMs: 60_000 });
      await store.createConversation({ id: 'c' });
      const errors: Error[] = [];
      db.on('error', (e) => errors.push(e));
      expect(
        await store.appendMessage(
          'c',
          { role: 'user', content: 'later' },
          { durability: 'deferred' },
        ),
      ).toBeUndefined();
      void store.appendMessage('ghost', { role: 'user', content: 'x' }, { durability: 'deferred' });
      void store.appendMessage(
        'c',
        { role: 'nobody' as never, content: 'x' },
        { durability: 'deferred' },
      );
      expect(await count(db, 'messages')).toBe(0);
      // A critical write flushes the deferred units queued before it.
      await store.createConversation({ id: 'flush' });
      expect(await readFresh(db, 'select content from messages')).toEqual([{ content: 'later' }]);
      await delay(10);
      expect(errors.map((e) => (e as WalguardError).code).sort()).toEqual(
        ['INVALID_OPTION', engine.code.foreignKey].sort(),
      );
    });

    it('deleteMessage removes one message', async () => {
      const { store } = await setup();
      await store.createConversation({ id: 'c' });
      const [a, b] = await store.appendMessages('c', [
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ]);
      expect(await store.deleteMessage(a!.id)).toBe(true);
      expect(await store.deleteMessage(a!.id)).toBe(false);
      expect((await store.listMessages('c')).rows).toEqual([b]);
    });
  });
});
