/**
 * The PostgreSQL reader: a `pg` pool whose sessions are read-only
 * (`default_transaction_read_only = on`), each statement in its own snapshot.
 *
 * Reads never wait for the writer and never block the event loop (contract line 5): they
 * are network requests on connections of their own. After a write resolved, a later read
 * sees it (read committed: each statement takes a fresh snapshot, after the COMMIT).
 *
 * A raw statement whose kind Kysely's tree does not tell is classified like SQLite's
 * `query_only` does: a statement that does not start with a read keyword goes to the writer
 * at once (`MUST_WRITE`); one that does is tried here, and when the server refuses it as a
 * write in a read-only transaction (SQLSTATE 25006: `WITH … DELETE`, `SELECT nextval()`,
 * `SELECT … FOR UPDATE`), it goes to the writer too. Session commands (`SET`, …) never
 * run on a pooled connection.
 */
import pg from 'pg';
import type { StatementResult } from '../queue/protocol.js';
import { LatencyWindow } from '../queue/queue-stats.js';
import type { ReadPort } from '../repo/query-backend.js';
import { MUST_WRITE } from '../repo/reader.js';
import type { ReadStats } from '../stats.js';
import { clientConfig, type PgSettingsReadBack, readBackSettings } from './pg-connection.js';
import { sqlState, toPostgresError } from './pg-errors.js';

/** Statements that may only read, by first keyword. */
const READS = new Set(['SELECT', 'WITH', 'VALUES', 'TABLE', 'SHOW', 'EXPLAIN']);

/** Default size of the pool. */
export const READ_POOL_SIZE = 10;

export class PgReader implements ReadPort {
  readonly #pool: pg.Pool;
  /** The settings of the first session, as read back. */
  readonly settings: PgSettingsReadBack;
  #reads = 0;
  #streams = 0;
  #writerReads = 0;
  #maxQueueDepth = 0;
  readonly #latency = new LatencyWindow();

  private constructor(pool: pg.Pool, settings: PgSettingsReadBack) {
    this.#pool = pool;
    this.settings = settings;
  }

  /** Opens the pool and verifies one session's settings (every session gets the same). */
  static async open(url: string): Promise<PgReader> {
    const pool = new pg.Pool({
      ...clientConfig(url, 'walguard reader'),
      max: READ_POOL_SIZE,
      // Every pooled session is read-only from its start (options are sent at connect).
      options: '-c default_transaction_read_only=on',
    });
    // An idle pooled connection that the server drops must not crash the app; the pool
    // replaces it on the next read.
    pool.on('error', () => {});
    try {
      const client = await pool.connect();
      try {
        // Read back what the startup options gave this session, as every session gets it.
        const settings = await readBackSettings(client, true);
        return new PgReader(pool, settings);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => {});
      throw error;
    }
  }

  /** Runs a statement known to only read. */
  async query(sql: string, params: readonly unknown[]): Promise<StatementResult> {
    const started = this.#started();
    try {
      return { rows: (await this.#pool.query(extended(sql, params))).rows };
    } catch (error) {
      throw readError(error);
    } finally {
      this.#latency.add(performance.now() - started);
    }
  }

  /** Counts a read as it starts; returns its start time. */
  #started(): number {
    this.#reads++;
    this.#maxQueueDepth = Math.max(this.#maxQueueDepth, this.#pool.waitingCount);
    return performance.now();
  }

  /** Counts a read that ran on the writer (inside an interactive transaction). */
  ranOnWriter(): void {
    this.#writerReads++;
  }

  /**
   * The read counters, as `stats().reads` reports them: every read runs on the pool (`pool`,
   * latency in `poolLatencyMs`); the queue is the pool's callers waiting for a connection.
   */
  stats(): ReadStats {
    return {
      main: 0,
      pool: this.#reads,
      overflowed: 0,
      writer: this.#writerReads,
      streams: this.#streams,
      threads: 0,
      queueDepth: this.#pool.waitingCount,
      maxQueueDepth: this.#maxQueueDepth,
      trackedStatements: 0,
      pooledStatements: 0,
      mainLatencyMs: new LatencyWindow(1).summary(),
      poolLatencyMs: this.#latency.summary(),
    };
  }

  /** Runs a statement that may read or write; rejects with `MUST_WRITE` when it writes. */
  async tryQuery(sql: string, params: readonly unknown[]): Promise<StatementResult> {
    const first = /^\s*(?:(?:--[^\n]*\n|\/\*[\s\S]*?\*\/)\s*)*\(?\s*([A-Za-z]+)/.exec(sql)?.[1];
    if (first === undefined || !READS.has(first.toUpperCase())) throw MUST_WRITE;
    const started = this.#started();
    try {
      const result = await this.#pool.query(extended(sql, params));
      if (
        result.command !== 'SELECT' &&
        result.command !== 'SHOW' &&
        result.command !== 'EXPLAIN'
      ) {
        throw MUST_WRITE;
      }
      return { rows: result.rows };
    } catch (error) {
      if (error === MUST_WRITE || sqlState(error) === '25006') throw MUST_WRITE;
      throw readError(error);
    } finally {
      this.#latency.add(performance.now() - started);
    }
  }

  /** Streams a read's rows `chunkSize` at a time through a cursor in a read-only transaction. */
  async *stream(
    sql: string,
    params: readonly unknown[],
    chunkSize: number,
  ): AsyncGenerator<StatementResult> {
    this.#streams++;
    const client = await this.#pool.connect();
    let healthy = true;
    try {
      await client.query('BEGIN READ ONLY');
      await client.query(extended(`DECLARE wg_stream NO SCROLL CURSOR FOR ${sql}`, params));
      for (;;) {
        const { rows } = await client.query(
          `FETCH ${Math.max(1, Math.trunc(chunkSize))} FROM wg_stream`,
        );
        if (rows.length === 0) break;
        yield { rows };
      }
    } catch (error) {
      healthy = false;
      throw readError(error);
    } finally {
      try {
        await client.query('ROLLBACK');
      } catch {
        healthy = false;
      }
      client.release(!healthy);
    }
  }

  /** Closes the pool. */
  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/**
 * A query sent with the extended protocol even without parameters: one command per text, so
 * a raw `select 1; delete …` cannot slip a write through.
 */
function extended(sql: string, params: readonly unknown[]): pg.QueryConfig {
  return { text: sql, values: params as unknown[], queryMode: 'extended' } as pg.QueryConfig;
}

/** A read's error: server errors keep their SQLSTATE; a lost connection is `IO_ERROR`. */
function readError(error: unknown): Error {
  if (sqlState(error) !== undefined) return toPostgresError(error);
  return error instanceof Error ? error : new Error(String(error));
}
