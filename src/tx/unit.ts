/**
 * A unit: what the contract calls "all or nothing" — one `write()`, one Kysely write, one
 * `defer()`, or one interactive transaction. The queue moves units; the writer applies each
 * under its own SAVEPOINT.
 */
import { performance } from 'node:perf_hooks';
import type { StatementResult, WireStatement, WireUnit } from '../queue/protocol.js';

/** A unit waiting in, or taken from, the write queue. */
export interface Unit {
  /** What the writer runs. */
  readonly wire: WireUnit;
  /** Critical units are acknowledged only after a COMMIT with the configured `synchronous`; deferred ones are not awaited. */
  readonly critical: boolean;
  /** Approximate size of its SQL and parameters, for the queue's byte bounds. */
  readonly bytes: number;
  /** Its place in submission order, taken when it was called (see `submission-order.ts`); 0 = take one on arrival. */
  ticket: number;
  /** `performance.now()` when it was submitted. */
  readonly submittedAt: number;
  /** Called once its batch committed and it succeeded. */
  resolve(results: StatementResult[]): void;
  /** Called once it failed alone, or its batch failed. */
  reject(error: Error): void;
}

/**
 * Bytes counted per queued unit beyond its SQL and parameters, so that many tiny units cannot
 * slip under `maxPendingBytes` for free. The JS heap a queued unit really holds is about
 * twice what is counted: measured 1.07 KB for a one-statement deferred insert of two
 * parameters (80-byte text) counted as 549 bytes — the unit, its statement and parameter
 * arrays, its caller's stack, callbacks (its SQL text is shared, see `writable.ts`). So the
 * default 64 MiB bound admits about 120k such units, ~130 MB of heap (docs/durability.md says
 * so); a lower bound is the app's choice.
 */
export const UNIT_OVERHEAD_BYTES = 400;

/** Approximate bytes of one statement: SQL text plus parameter payloads. */
export function statementBytes(statement: WireStatement): number {
  let bytes = statement.sql.length + 16;
  for (const p of statement.params) {
    if (typeof p === 'string') bytes += p.length;
    else if (p instanceof Uint8Array) bytes += p.byteLength;
    else bytes += 8;
  }
  return bytes;
}

/** A unit of `statements`; `ticket` is its call-time place in submission order (none: on arrival). */
export function statementsUnit(
  statements: WireStatement[],
  critical: boolean,
  ticket: number | undefined,
  resolve: (results: StatementResult[]) => void,
  reject: (error: Error) => void,
): Unit {
  let bytes = UNIT_OVERHEAD_BYTES;
  for (const s of statements) bytes += statementBytes(s);
  const wire: WireUnit = { kind: 'statements', statements };
  return {
    wire,
    critical,
    bytes,
    ticket: ticket ?? 0,
    submittedAt: performance.now(),
    resolve,
    reject,
  };
}
