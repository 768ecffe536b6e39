/**
 * Type tests: `npx tsc -p tsconfig.json --noEmit` checks them (tsconfig includes test/). Each
 * `@ts-expect-error` line must fail to compile — if one compiles, tsc reports the unused
 * directive. The runtime part only builds objects; no database is opened.
 */
import type { ColumnType, Generated } from 'kysely';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { Walguard } from '../../src/index.js';
import type {
  Conversation,
  ConversationStore,
  Message,
} from '../../src/repo/conversation-store.js';
import type { MemoryStore, ScoredMemory } from '../../src/repo/memory-store.js';
import { type Filter, type Page, Repository } from '../../src/repo/repository.js';

interface DB {
  people: {
    id: Generated<number>;
    name: string;
    email: string | null;
    created_at: ColumnType<number, number | undefined, never>;
  };
  keyed: { code: string; label: string };
}

type Person = { id: number; name: string; email: string | null; created_at: number };

/** A stand-in: these tests never run a query. */
const db = {} as Walguard<DB>;

/** The type of what `f` returns, without calling it. */
const typeOf = <T>(_f: () => T) => expectTypeOf<T>();

describe('Repository types', () => {
  it('come from the DB interface, with no any', () => {
    const people = new Repository(db, 'people');
    expectTypeOf(people.table).toEqualTypeOf<'people'>();
    expectTypeOf(people.primaryKey).toEqualTypeOf<'id'>();
    expectTypeOf(people.findById).parameter(0).toEqualTypeOf<number>();
    typeOf(() => people.findById(1)).resolves.toEqualTypeOf<Person | undefined>();
    typeOf(() => people.insert({ name: 'a', email: null })).resolves.toEqualTypeOf<Person>();
    typeOf(() =>
      people.insert({ name: 'a', email: null }, { durability: 'deferred' }),
    ).resolves.toEqualTypeOf<void>();
    typeOf(() => people.insertMany([])).resolves.toEqualTypeOf<Person[]>();
    typeOf(() => people.update(1, { name: 'b' })).resolves.toEqualTypeOf<Person | undefined>();
    typeOf(() => people.upsert({ name: 'a', email: null })).resolves.toEqualTypeOf<Person>();
    typeOf(() => people.delete(1)).resolves.toEqualTypeOf<boolean>();
    typeOf(() => people.deleteWhere({ name: 'x' })).resolves.toEqualTypeOf<number>();
    typeOf(() => people.count()).resolves.toEqualTypeOf<number>();
    typeOf(() => people.find()).resolves.toEqualTypeOf<Page<Person>>();
    typeOf(() => people.findById(1)).resolves.not.toBeAny();
    expectTypeOf<Filter<Person>['name']>().not.toBeAny();

    const keyed = new Repository(db, 'keyed', { primaryKey: 'code' });
    expectTypeOf(keyed.findById).parameter(0).toEqualTypeOf<string>();
    expect(people.table).toBe('people');
  });

  it('reject unknown tables, columns and wrongly typed values at compile time', () => {
    const people = new Repository(db, 'people');
    const attempts = [
      // @ts-expect-error: no such table
      () => new Repository(db, 'nope', { primaryKey: 'id' }),
      // @ts-expect-error: `keyed` has no `id` column, so the primary key must be given
      () => new Repository(db, 'keyed'),
      // @ts-expect-error: no such column as primary key
      () => new Repository(db, 'people', { primaryKey: 'nope' }),
      // @ts-expect-error: unknown column in a filter
      () => people.find({ where: { nope: 1 } }),
      // @ts-expect-error: wrong value type in a filter
      () => people.find({ where: { name: 42 } }),
      // @ts-expect-error: `like` only applies to strings
      () => people.find({ where: { id: { like: '1%' } } }),
      // @ts-expect-error: `gt` takes no null
      () => people.find({ where: { email: { gt: null } } }),
      // @ts-expect-error: unknown order column
      () => people.find({ orderBy: 'nope' }),
      // @ts-expect-error: unknown column on insert
      () => people.insert({ name: 'a', email: null, nope: 1 }),
      // @ts-expect-error: required column missing on insert
      () => people.insert({ email: null }),
      // @ts-expect-error: wrong type on insert
      () => people.insert({ name: 1, email: null }),
      // @ts-expect-error: `created_at` cannot be updated (ColumnType<…, never>)
      () => people.update(1, { created_at: 5 }),
      // @ts-expect-error: the id has the primary key's type
      () => people.findById('1'),
      // @ts-expect-error: unknown durability
      () => people.insert({ name: 'a', email: null }, { durability: 'eventually' }),
      // @ts-expect-error: unknown upsert conflict column
      () => people.upsert({ name: 'a', email: null }, { conflict: ['nope'] }),
    ];
    expect(attempts).toHaveLength(15);
  });
});

describe('store types', () => {
  it('return domain objects, typed metadata, and void for deferred writes', () => {
    type Meta = { topic: string };
    const store = {} as ConversationStore<Meta>;
    typeOf(() => store.getConversation('x')).resolves.toEqualTypeOf<
      Conversation<Meta> | undefined
    >();
    typeOf(() =>
      store.appendMessage('c', { role: 'user', content: 'hi' }),
    ).resolves.toEqualTypeOf<Message>();
    typeOf(() =>
      store.appendMessage('c', { role: 'user', content: 'hi' }, { durability: 'deferred' }),
    ).resolves.toEqualTypeOf<void>();
    typeOf(() => store.listMessages('c')).resolves.toEqualTypeOf<Page<Message>>();
    const memories = {} as MemoryStore;
    typeOf(() => memories.search([1, 2])).resolves.toEqualTypeOf<ScoredMemory[]>();
    typeOf(() => memories.recordAccess(1)).resolves.toEqualTypeOf<void>();
    typeOf(() =>
      memories.recordAccess(1, { durability: 'critical' }),
    ).resolves.toEqualTypeOf<number>();
    const attempts = [
      // @ts-expect-error: unknown role
      () => store.appendMessage('c', { role: 'robot', content: 'x' }),
      // @ts-expect-error: metadata of the wrong shape
      () => store.createConversation({ metadata: { topic: 1 } }),
      // @ts-expect-error: an embedding is numbers
      () => memories.search(['a']),
    ];
    expect(attempts).toHaveLength(3);
  });
});
