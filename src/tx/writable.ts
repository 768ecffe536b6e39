/**
 * What `write()` and `defer()` accept and return: query builders, `sql` templates or compiled
 * queries in, one result per statement out.
 */
import type { CompiledQuery } from 'kysely';
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

/** Compiles what a `write()`/`defer()` function returned into the statements of one unit. */
export function compileWritables(built: unknown, executorProvider: unknown): WireStatement[] {
  const list = Array.isArray(built) ? (built as readonly Writable[]) : [built as Writable];
  return list.map((w) => {
    const compiled: CompiledQuery =
      'compile' in w ? (w.compile as (p: unknown) => CompiledQuery)(executorProvider) : w;
    return { sql: compiled.sql, params: compiled.parameters };
  });
}
