import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ConversationStore,
  type ConversationTables,
  conversationMigrations,
  openDatabase,
} from '../../src/index.js';
import { tempDir } from '../helpers.js';

describe('openDatabase({ migrations })', () => {
  it('migrates a new database without a backup, runs nothing on reopen, and backs up before later pending migrations', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.db');
    const base = { path: file, logger: false as const, handleSignals: false };
    const db = await openDatabase<ConversationTables>({
      ...base,
      migrations: conversationMigrations(),
    });
    expect(db.migrations?.ran.length).toBeGreaterThan(0);
    const chats = await ConversationStore.open(db);
    const chat = await chats.createConversation({ title: 'kept' });
    await db.close();
    expect(fs.existsSync(path.join(dir, 'backups'))).toBe(false);

    const again = await openDatabase<ConversationTables>({
      ...base,
      migrations: conversationMigrations(),
    });
    expect(again.migrations?.ran).toEqual([]);
    await again.close();

    const extra = {
      'zz-2026-11-25-add-notes': {
        async up(k: import('kysely').Kysely<unknown>) {
          await k.schema
            .createTable('notes')
            .addColumn('id', 'integer', (c) => c.primaryKey())
            .execute();
        },
      },
    };
    const app = { name: 'app', migrations: extra };
    const third = await openDatabase<ConversationTables>({
      ...base,
      migrations: [conversationMigrations(), app],
    });
    expect(third.migrations?.ran.map((r) => r.migration)).toEqual(['zz-2026-11-25-add-notes']);
    const backups = fs.readdirSync(path.join(dir, 'backups')).filter((n) => n.endsWith('.db'));
    expect(backups).toHaveLength(1);
    expect(
      (await ConversationStore.open(third).then((s) => s.getConversation(chat.id)))?.title,
    ).toBe('kept');
    await third.close();
  });

  it('a failing migration fails the open, releases the lock, and names the migration', async () => {
    const file = path.join(tempDir(), 'bad.db');
    const bad = {
      '001-broken': {
        async up(k: import('kysely').Kysely<unknown>) {
          await k.schema.createTable('ok_table').addColumn('id', 'integer').execute();
          await k.schema.createTable('ok_table').addColumn('id', 'integer').execute();
        },
      },
    };
    await expect(
      openDatabase({ path: file, logger: false, handleSignals: false, migrations: bad }),
    ).rejects.toThrow(/001-broken/);
    const db = await openDatabase({ path: file, logger: false, handleSignals: false });
    const tables = await db.kysely.introspection.getTables();
    expect(tables.map((t) => t.name)).not.toContain('ok_table');
    await db.close();
  });
});
