/**
 * What `write()` and `defer()` accept and return: query builders, `sql` templates or compiled
 * queries in, one result per statement out.
 */
import type { CompiledQuery } from 'kysely';
import { WalguardError } from '../errors.js';
import type { WireStatement } from '../queue/protocol.js';

/** Something `write()` and `defer()` accept: a Kysely query builder, `sql` template, or compiled query. */
export type Writable<O = unknown> =
  | { compile(): CompiledQuery<O> }
  | { compile(executorProvider: never): CompiledQuery<O> }
  | CompiledQuery<O>;

/** The row type of a `Writable`. */
export type OutputOf<W> =
  W extends CompiledQuery<infer O>
    ? O
    : W extends { compile(...args: never[]): CompiledQuery<infer O> }
      ? O
      : unknown;

/** The result of one statement of a `write()`. */
export interface WriteResult<O> {
  /** Rows, for statements that return rows (`… RETURNING`, selects). */
  rows: O[];
  /** Rows changed, for statements that return no rows. */
  numAffectedRows?: bigint;
  /** Last inserted rowid, for statements that return no rows. */
  insertId?: bigint;
}

/** `write()`'s result: one `WriteResult` per statement, shaped like what the function returned. */
export type WriteResults<W> = W extends readonly unknown[]
  ? { -readonly [K in keyof W]: WriteResult<OutputOf<W[K]>> }
  : WriteResult<OutputOf<W>>;

/** Calls the function given to `write()`/`defer()`; `INVALID_ARGUMENT` when it is not one. */
export function callWriteFunction<T>(method: 'write' | 'defer', fn: unknown, db: T): unknown {
  if (typeof fn !== 'function') {
    throw new WalguardError(
      'INVALID_ARGUMENT',
      `Expected ${method}() to get a function that returns the statements to run, e.g. ${example(method)}; got ${describe(fn)}`,
    );
  }
  return (fn as (db: T) => unknown)(db);
}

/**
 * Compiles what a `write()`/`defer()` function returned into the statements of one unit;
 * `INVALID_ARGUMENT`, before anything is queued, when it returned something else.
 */
export function compileWritables(
  built: unknown,
  executorProvider: unknown,
  method: 'write' | 'defer' = 'write',
): WireStatement[] {
  const list = Array.isArray(built) ? (built as unknown[]) : [built];
  if (list.length === 0) {
    throw invalidWritable(method, built, 'an empty array: there is nothing to write');
  }
  return list.map((w) => {
    const compiled = compileOne(w, executorProvider);
    if (compiled === undefined) throw invalidWritable(method, w, undefined);
    return { sql: internSql(compiled.sql), params: compiled.parameters };
  });
}

/** Canonical SQL strings by text (bounded: cleared when full). */
const sqlTexts = new Map<string, string>();

/**
 * One flat copy of each SQL text for every unit that uses it. Kysely builds a statement's SQL
 * by appending ~20 pieces, which V8 keeps as a tree of ~20 string nodes until something
 * flattens it: measured 1.4 KB of heap per queued one-statement unit, 0.75 KB with this (a
 * fire-and-forget burst of 100k units queues all of them at once).
 */
function internSql(sql: string): string {
  const known = sqlTexts.get(sql);
  if (known !== undefined) return known;
  if (sqlTexts.size >= 1024) sqlTexts.clear();
  sqlTexts.set(sql, sql);
  return sql;
}

/** A Kysely builder compiled, a compiled query as is, or undefined for anything else. */
function compileOne(w: unknown, executorProvider: unknown): CompiledQuery | undefined {
  if (typeof w !== 'object' || w === null) return undefined;
  const candidate = w as { compile?: unknown; sql?: unknown; parameters?: unknown };
  if (typeof candidate.compile === 'function') {
    const compiled = (candidate.compile as (p: unknown) => unknown)(executorProvider);
    return isCompiledQuery(compiled) ? compiled : undefined;
  }
  return isCompiledQuery(w) ? w : undefined;
}

function isCompiledQuery(w: unknown): w is CompiledQuery {
  const c = w as { sql?: unknown; parameters?: unknown } | null;
  return (
    typeof c === 'object' && c !== null && typeof c.sql === 'string' && Array.isArray(c.parameters)
  );
}

function invalidWritable(method: 'write' | 'defer', got: unknown, what: string | undefined) {
  const isPromise = typeof (got as { then?: unknown } | null)?.then === 'function';
  if (isPromise) {
    // It already runs on its own; its outcome is not this unit's. Keep its rejection handled.
    (got as Promise<unknown>).then(undefined, () => {});
  }
  const reason = isPromise
    ? 'a Promise: the function ran the query itself (`.execute()`), so it runs on its own, outside this unit. Return the query builder without executing it'
    : got === undefined
      ? 'undefined: the function returned nothing (a missing `return`, or braces around an arrow function body?). Return the query builder'
      : (what ??
        `${describe(got)}, which is neither a Kysely query builder nor a compiled query. Return the query builder`);
  return new WalguardError(
    'INVALID_ARGUMENT',
    `${method}() cannot run what its function returned, ${reason}: ${example(method)}; several statements as one unit: return an array of builders. Nothing was queued`,
  );
}

function example(method: 'write' | 'defer'): string {
  return `db.${method}((k) => k.insertInto('t').values(row))`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `a string (\`${value.slice(0, 40)}\`)`;
  return typeof value === 'object' ? 'a plain object' : `a ${typeof value}`;
}
