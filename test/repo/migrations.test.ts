import { Kysely, type Migration, Migrator, sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openDatabase, type WalguardError } from '../../src/index.js';
import { conversationMigrations } from '../../src/repo/conversation-store.js';
import { memoryMigrations } from '../../src/repo/memory-store.js';
import {
  MigrationError,
  type MigrationSet,
  pendingMigrations,
  runMigrations,
} from '../../src/repo/migrations.js';
import { openTemp, readFresh } from '../helpers.js';

/** The schema as a fresh connection sees it: every object with its SQL. */
function schema(file: string) {
  return readFresh<{ type: string; name: string; sql: string | null }>(
    file,
    'select type, name, sql from sqlite_schema order by type, name',
  );
}

/** The schema without Kysely's bookkeeping tables. */
function userSchema(file: string) {
  return schema(file).filter((o) => !/migration/.test(o.name));
}

const createTable =
  (name: string): Migration['up'] =>
  async (db: Kysely<unknown>) => {
    await db.schema
      .createTable(name)
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .execute();
  };

const appMigrations = {
  '001_notes': { up: createTable('notes') },
  '002_tags': {
    async up(db: Kysely<unknown>) {
      await createTable('tags')(db);
      await db.schema.alterTable('notes').addColumn('body', 'text').execute();
    },
  },
} satisfies Record<string, Migration>;

const stores = (): MigrationSet[] => [
  conversationMigrations(),
  memoryMigrations({ dimensions: 8 }),
];

describe('runMigrations', () => {
  it('migrates a fresh database: every set in order, each migration recorded, the hook called once', async () => {
    const db = await openTemp();
    const calls: { pending: string[]; firstRun: boolean }[] = [];
    const report = await runMigrations(
      db,
      [...stores(), { name: 'app', migrations: appMigrations }],
      {
        beforePending: async (pending, info) => {
          calls.push({ pending, firstRun: info.firstRun });
        },
      },
    );
    const expected = [
      'conversations/0001_conversations_and_messages',
      'memories/0001_memories',
      'app/001_notes',
      'app/002_tags',
    ];
    expect(calls).toEqual([{ pending: expected, firstRun: true }]);
    expect(report.ran.map((r) => `${r.set}/${r.migration}`)).toEqual(expected);
    expect(report.pending).toEqual(expected);
    expect(report.alreadyApplied).toBe(0);
    const names = schema(db.path).map((o) => o.name);
    for (const name of [
      'conversations',
      'messages',
      'memories',
      'memories_embedding_idx',
      'notes',
      'tags',
      'walguard_migration_conversations',
      'walguard_migration_memories',
      'kysely_migration',
    ]) {
      expect(names).toContain(name);
    }
    expect(readFresh(db.path, 'select name from kysely_migration order by name')).toEqual([
      { name: '001_notes' },
      { name: '002_tags' },
    ]);
    expect(readFresh(db.path, 'select name from walguard_migration_memories')).toEqual([
      { name: '0001_memories' },
    ]);
  });

  it('reopening a migrated database runs nothing and writes nothing', async () => {
    const first = await openTemp();
    const input = [...stores(), { name: 'app', migrations: appMigrations }];
    await runMigrations(first, input);
    await first.close();
    const db = await openDatabase({ path: first.path, logger: false });
    try {
      const before = schema(first.path);
      let hook = 0;
      const report = await runMigrations(db, input, {
        beforePending: async () => {
          hook++;
        },
      });
      expect(report.ran).toEqual([]);
      expect(report.pending).toEqual([]);
      expect(report.alreadyApplied).toBe(4);
      expect(hook).toBe(0);
      expect(db.stats().units).toBe(0);
      expect(schema(first.path)).toEqual(before);
      expect(await pendingMigrations(db, input)).toEqual([]);
    } finally {
      await db.close();
    }
  });

  it('runs only the new migrations added later', async () => {
    const db = await openTemp();
    await runMigrations(db, { '001_notes': appMigrations['001_notes'] });
    expect(await pendingMigrations(db, appMigrations)).toEqual(['app/002_tags']);
    const report = await runMigrations(db, appMigrations);
    expect(report.ran.map((r) => r.migration)).toEqual(['002_tags']);
    expect(report.alreadyApplied).toBe(1);
  });

  it('a failing migration is rolled back whole: the schema is as it was, and the error names it', async () => {
    const db = await openTemp();
    await runMigrations(db, [...stores(), { name: 'app', migrations: appMigrations }]);
    const before = schema(db.path);
    const broken = {
      ...appMigrations,
      '003_half': {
        async up(k: Kysely<unknown>) {
          // Several changes succeed before the failure; all must be undone.
          await createTable('half_done')(k);
          await k.schema.alterTable('notes').addColumn('extra', 'text').execute();
          await k.schema.createIndex('notes_by_body').on('notes').column('body').execute();
          await sql`insert into notes (id, body) values (1, 'x')`.execute(k);
          await sql`select * from no_such_table`.execute(k);
        },
      },
      '004_never': { up: createTable('never') },
    };
    const attempt = runMigrations(db, [...stores(), { name: 'app', migrations: broken }]);
    await expect(attempt).rejects.toBeInstanceOf(MigrationError);
    const error = (await attempt.catch((e: unknown) => e)) as MigrationError;
    expect(error.set).toBe('app');
    expect(error.migration).toBe('003_half');
    expect(error.message).toContain('Migration "app/003_half" failed and was rolled back');
    expect(error.message).toContain('no such table: no_such_table');
    expect(error.report.ran).toEqual([]);
    expect((error.cause as { code?: string }).code).toBe('SQLITE_ERROR');
    expect(schema(db.path)).toEqual(before);
    expect(readFresh(db.path, 'select count(*) as n from notes')).toEqual([{ n: 0 }]);
    expect(readFresh(db.path, 'select name from kysely_migration order by name')).toEqual([
      { name: '001_notes' },
      { name: '002_tags' },
    ]);
    // The database goes on working, and fixing the migration lets the run finish.
    const fixed = { ...broken, '003_half': { up: createTable('half_done') } };
    const report = await runMigrations(db, fixed);
    expect(report.ran.map((r) => r.migration)).toEqual(['003_half', '004_never']);
  });

  it('a migration outlives transactionTimeoutMs (it has migrationTimeoutMs), and past that it is rolled back', async () => {
    const slow =
      (ms: number): Migration['up'] =>
      async (k: Kysely<unknown>) => {
        await createTable(`slow_${ms}`)(k);
        await new Promise((r) => setTimeout(r, ms));
      };
    const db = await openTemp({ transactionTimeoutMs: 50, migrationTimeoutMs: 1000 });
    const report = await runMigrations(db, { '001_slow': { up: slow(200) } });
    expect(report.ran.map((r) => r.migration)).toEqual(['001_slow']);
    // An ordinary transaction still gets transactionTimeoutMs.
    await expect(
      db.transaction(async (trx) => {
        await sql`select 1`.execute(trx);
        await new Promise((r) => setTimeout(r, 200));
        await sql`select 1`.execute(trx);
      }),
    ).rejects.toMatchObject({ code: 'TX_TIMEOUT' });
    const attempt = runMigrations(db, {
      '001_slow': { up: slow(200) },
      '002_too_slow': { up: slow(2500) },
    });
    const error = (await attempt.catch((e: unknown) => e)) as MigrationError;
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.migration).toBe('002_too_slow');
    expect(error.message).toContain('exceeded its timeout (1000 ms)');
    expect(userSchema(db.path).map((o) => o.name)).toEqual(['slow_200']);
  });

  it('migrations before the failing one stay applied; later ones do not run', async () => {
    const db = await openTemp();
    const attempt = runMigrations(db, {
      '001_a': { up: createTable('a') },
      '002_b': { up: createTable('b') },
      '003_bad': {
        async up(k: Kysely<unknown>) {
          await createTable('c')(k);
          await createTable('a')(k);
        },
      },
      '004_d': { up: createTable('d') },
    });
    const error = (await attempt.catch((e: unknown) => e)) as MigrationError;
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.migration).toBe('003_bad');
    expect(error.report.ran.map((r) => r.migration)).toEqual(['001_a', '002_b']);
    expect(error.message).toContain('the 2 migration(s) before it in this run stay applied');
    expect(error.message).toContain('table "a" already exists');
    expect(userSchema(db.path).map((o) => o.name)).toEqual(['a', 'b']);
  });

  it('a failing first migration on a fresh database leaves only the empty bookkeeping tables', async () => {
    const db = await openTemp();
    await expect(
      runMigrations(db, [
        {
          name: 'memories',
          migrations: {
            '0001_memories': {
              async up(k: Kysely<unknown>) {
                await memoryMigrations({ dimensions: 4 }).migrations['0001_memories']!.up(k);
                throw new Error('stop after the vector index');
              },
            },
          },
        },
      ]),
    ).rejects.toThrow('Migration "memories/0001_memories" failed and was rolled back');
    expect(userSchema(db.path)).toEqual([]);
    expect(readFresh(db.path, 'select count(*) as n from walguard_migration_memories')).toEqual([
      { n: 0 },
    ]);
  });

  it('beforePending can stop the run before anything is migrated', async () => {
    const db = await openTemp();
    await expect(
      runMigrations(db, appMigrations, {
        beforePending: async () => {
          throw new Error('backup failed');
        },
      }),
    ).rejects.toThrow('backup failed');
    expect(schema(db.path)).toEqual([]);
  });

  it('refuses a new migration that sorts before an executed one, naming the set', async () => {
    const db = await openTemp();
    await runMigrations(db, appMigrations);
    const attempt = runMigrations(db, { ...appMigrations, '000_first': { up: createTable('x') } });
    const error = (await attempt.catch((e: unknown) => e)) as MigrationError;
    expect(error).toBeInstanceOf(MigrationError);
    expect(error.set).toBe('app');
    expect(error.migration).toBeUndefined();
    expect(error.message).toContain('Migrations of set "app" cannot run: corrupted migrations');
    expect(userSchema(db.path).map((o) => o.name)).toEqual(['notes', 'tags']);
  });

  it('rejects malformed input with INVALID_OPTION', async () => {
    const db = await openTemp();
    const bad = async (input: unknown) =>
      (await runMigrations(db, input as never).catch((e: unknown) => e)) as WalguardError;
    expect((await bad({ '001': { nope: true } })).code).toBe('INVALID_OPTION');
    expect((await bad([{ name: 'a b', migrations: {} }])).message).toContain('set name');
    expect(
      (
        await bad([
          { name: 'x', migrations: {} },
          { name: 'x', migrations: {} },
        ])
      ).message,
    ).toContain('Two migration sets are named `x`');
  });

  it('each migration is one unit through the writer, durable when the run resolves', async () => {
    const db = await openTemp();
    let units = db.stats().units;
    await runMigrations(db, { '001_notes': appMigrations['001_notes'] });
    // Kysely's bookkeeping (2 tables, 1 lock row), then one unit for the migration.
    expect(db.stats().units - units).toBe(4);
    units = db.stats().units;
    await runMigrations(db, appMigrations);
    expect(db.stats().units - units).toBe(1);
    expect(readFresh(db.path, 'select name from kysely_migration order by name')).toEqual([
      { name: '001_notes' },
      { name: '002_tags' },
    ]);
  });
});

describe("Kysely's Migrator on walguard", () => {
  it('concurrent migrators on db.kysely and on db.dialect-built instances apply each migration exactly once', async () => {
    const db = await openTemp();
    const runs: Record<string, number> = { m1: 0, m2: 0 };
    const migration =
      (name: 'm1' | 'm2'): Migration['up'] =>
      async (k: Kysely<unknown>) => {
        runs[name]!++;
        // Long enough that the migrators overlap.
        await new Promise((r) => setTimeout(r, 20));
        await k.schema.createTable(`t_${name}`).addColumn('id', 'integer').execute();
      };
    const provider = {
      getMigrations: async () => ({ m1: { up: migration('m1') }, m2: { up: migration('m2') } }),
    };
    const instances = [
      ...Array.from({ length: 4 }, () => db.kysely as Kysely<unknown>),
      ...Array.from({ length: 4 }, () => new Kysely<unknown>({ dialect: db.dialect })),
    ];
    const results = await Promise.all(
      instances.map((k) => new Migrator({ db: k, provider }).migrateToLatest()),
    );
    expect(runs).toEqual({ m1: 1, m2: 1 });
    expect(results.map((r) => r.error)).toEqual(Array(8).fill(undefined));
    const applied = results.flatMap((r) => r.results ?? []).filter((r) => r.status === 'Success');
    expect(applied.map((r) => r.migrationName).sort()).toEqual(['m1', 'm2']);
    expect(readFresh(db.path, 'select name from kysely_migration order by name')).toEqual([
      { name: 'm1' },
      { name: 'm2' },
    ]);
  });
});
