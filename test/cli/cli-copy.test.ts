import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { createKeyFile } from '../../src/durability/key-file.js';
import {
  ConversationStore,
  conversationMigrations,
  MemoryStore,
  memoryMigrations,
  openDatabase,
  runMigrations,
} from '../../src/index.js';
import { readFreshPg } from '../pg/cluster.js';
import { describePg, freshUrl } from '../pg/pg-helpers.js';
import { ensureBuilt, walguard as runWalguard, tempDir } from './cli-harness.js';

const PASSPHRASE = 'copy me if you can 1234';
const APP_MIGRATIONS = `export const migrations = {
  '001_notes': {
    async up(db) {
      await db.schema.createTable('notes')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('body', 'text', (c) => c.notNull())
        .execute();
    },
  },
};
`;

/** An encrypted source with both stores and an app table, built through their migrations. */
async function makeSource(dir: string) {
  const file = path.join(dir, 'app.db');
  const migrationsFile = path.join(dir, 'migrations.mjs');
  fs.writeFileSync(migrationsFile, APP_MIGRATIONS);
  const { migrations } = (await import(migrationsFile)) as { migrations: never };
  await createKeyFile(file, PASSPHRASE, { params: { N: 2 ** 14 } });
  const db = await openDatabase<{ notes: { id: number; body: string } }>({
    path: file,
    encryption: { passphrase: PASSPHRASE },
    logger: false,
    handleSignals: false,
  });
  await runMigrations(db, [
    conversationMigrations(),
    memoryMigrations({ dimensions: 4 }),
    { name: 'app', migrations },
  ]);
  const chats = await ConversationStore.open(db);
  for (const id of ['a', 'b', 'c']) {
    await chats.createConversation({ id, title: `chat ${id}`, metadata: { id }, createdAt: 1 });
    await chats.appendMessages(
      id,
      Array.from({ length: 20 }, (_, i) => ({
        role: 'user' as const,
        content: `${id}${i}`,
        createdAt: 1000 + i,
      })),
    );
  }
  const memories = await MemoryStore.open(db, { dimensions: 4 });
  await memories.addMany(
    Array.from({ length: 25 }, (_, i) => ({
      kind: 'fact',
      content: `m${i}`,
      embedding: [Math.sin(i), Math.cos(i), i / 25, 1],
    })),
  );
  await db.write((k) =>
    Array.from({ length: 130 }, (_, i) => k.insertInto('notes').values({ id: i, body: `n${i}` })),
  );
  const query = [0.3, 0.9, 0.5, 1];
  const nearest = (await memories.search(query, { k: 5, exact: true })).map((m) => m.content);
  await db.close();
  return { file, migrationsFile, query, nearest };
}

describePg('walguard copy <db> <postgres-url>', () => {
  beforeAll(ensureBuilt, 120_000);

  it('copies an encrypted database into PostgreSQL with its schema from the same migrations, verifies counts, and the stores work there', async () => {
    const dir = tempDir();
    const source = await makeSource(dir);
    const url = await freshUrl();
    const passphrase = { input: `${PASSPHRASE}\n` };
    const copy = (...extra: string[]) =>
      runWalguard(['copy', source.file, url, '--passphrase-stdin', ...extra], passphrase);

    // Without the app's migrations, `notes` has no schema on the target: refused, nothing copied.
    const noSchema = await copy('--json');
    expect(noSchema.code, noSchema.stderr).toBe(2);
    expect(noSchema.json.error?.message).toContain('No table notes on the target');
    expect(await readFreshPg(url, 'select count(*) as n from messages')).toEqual([{ n: 0 }]);

    const run = await copy('--migrations', source.migrationsFile, '--json', '--progress');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('copy');
    const tables = Object.fromEntries(
      (run.json.tables as { name: string; rows: number; copied: number }[]).map((t) => [
        t.name,
        [t.rows, t.copied],
      ]),
    );
    expect(tables).toEqual({
      conversations: [3, 3],
      messages: [60, 60],
      memories: [25, 25],
      notes: [130, 130],
    });
    expect(JSON.stringify(run.json)).not.toContain(PASSPHRASE);

    // The stores open on the copy and behave as on the file.
    const db = await openDatabase({ url, logger: false, handleSignals: false });
    try {
      const chats = await ConversationStore.open(db);
      const page = await chats.listMessages('b', { limit: 100 });
      expect(page.rows.map((m) => m.content)).toEqual(
        Array.from({ length: 20 }, (_, i) => `b${i}`),
      );
      expect(await chats.getConversation('a')).toMatchObject({
        title: 'chat a',
        metadata: { id: 'a' },
      });
      // The identity sequence was moved past the copied ids.
      const added = await chats.appendMessage('a', { role: 'assistant', content: 'new' });
      expect(added.id).toBe(61);
      const memories = await MemoryStore.open(db, { dimensions: 4 });
      const found = await memories.search(source.query, { k: 5 });
      expect(found.map((m) => m.content)).toEqual(source.nearest);
    } finally {
      await db.close();
    }

    // A second copy into the now non-empty target is refused unless --append.
    const again = await copy('--migrations', source.migrationsFile, '--json');
    expect(again.code).toBe(2);
    expect(again.json.error?.message).toContain('--append');
    expect(await readFreshPg(url, 'select count(*) as n from notes')).toEqual([{ n: 130 }]);

    const wrong = await runWalguard(['copy', source.file, url, '--passphrase-stdin'], {
      input: 'not it\n',
    });
    expect(wrong.code).toBe(4);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 180_000);
});
