/**
 * The writer's prepared statements: each distinct SQL text is parsed once per connection and
 * then only bound and executed. Names are never reused (a statement whose Parse may or may
 * not have run before an error gets a Close, which is harmless when it does not exist), and
 * the least recently used statements past `capacity` are closed on the next round trip.
 */
import type pg from 'pg';
import { pgTypes } from './pg-types.js';
import { Pipeline, type PipelineOutcome, type PipelineStatement } from './pipeline.js';

/** Most prepared statements kept per connection. */
const CAPACITY = 256;

export class StatementCache {
  /** Confirmed statements: SQL text → name, least recently used first. */
  readonly #names = new Map<string, string>();
  /** Names handed out for the round being built, not yet confirmed. */
  readonly #pending = new Map<string, string>();
  /** Names to close on the next round trip. */
  #toClose: string[] = [];
  #counter = 0;
  readonly #capacity: number;

  /** `capacity` 0 turns caching off: every statement is parsed unnamed. */
  constructor(capacity = CAPACITY) {
    this.#capacity = capacity;
  }

  /** How to send `sql` in the round being built: by a cached name, or parsed (named). */
  lookup(sql: string): Pick<PipelineStatement, 'name' | 'parse'> {
    if (this.#capacity === 0) return {};
    const known = this.#names.get(sql);
    if (known !== undefined) {
      this.#names.delete(sql);
      this.#names.set(sql, known);
      return { name: known, parse: false };
    }
    const pending = this.#pending.get(sql);
    if (pending !== undefined) return { name: pending, parse: false };
    const name = `wg_${++this.#counter}`;
    this.#pending.set(sql, name);
    return { name, parse: true };
  }

  /** Sends one round (statements built with `lookup`) and records which Parses ran. */
  async run(client: pg.Client, items: readonly PipelineStatement[]): Promise<PipelineOutcome> {
    const pipeline = new Pipeline(items, pgTypes, this.#toClose.splice(0));
    client.query(pipeline);
    const outcome = await pipeline.done;
    const ran = outcome.failure?.index ?? items.length;
    for (let i = 0; i < items.length && i <= ran; i++) {
      const { name, parse, sql } = items[i]!;
      if (name === undefined || parse === false) continue;
      // The failing statement's Parse may have run: close its name to be sure.
      if (i === ran) this.#toClose.push(name);
      else this.#names.set(sql, name);
    }
    this.#pending.clear();
    while (this.#names.size > this.#capacity) {
      const [sql, name] = this.#names.entries().next().value as [string, string];
      this.#names.delete(sql);
      this.#toClose.push(name);
    }
    return outcome;
  }

  /** Forgets every statement (closing them on the next round trip): the schema changed. */
  invalidateAll(): void {
    this.#toClose.push(...this.#names.values());
    this.#names.clear();
  }

  /** Forgets everything: a new connection has no prepared statements. */
  clear(): void {
    this.#names.clear();
    this.#pending.clear();
    this.#toClose = [];
  }
}
