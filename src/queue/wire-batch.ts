/**
 * Encoding of batches and their replies for the trip to and from the writer worker (see
 * `WireBatch` for why they are flat).
 */
import type {
  BatchReply,
  StatementResult,
  UnitOutcome,
  WireBatch,
  WireBatchReply,
  WireUnit,
} from './protocol.js';

/** Flattens units into a `WireBatch`. */
export function encodeBatch(units: readonly WireUnit[]): WireBatch {
  let statements = 0;
  let paramTotal = 0;
  for (const unit of units) {
    if (unit.kind === 'statements') {
      statements += unit.statements.length;
      for (const s of unit.statements) paramTotal += s.params.length;
    }
  }
  const sizes = new Uint32Array(units.length);
  const txIds: number[] = [];
  const txTimeouts: number[] = [];
  const sql = new Array<string>(statements);
  const paramCounts = new Uint32Array(statements);
  const params = new Array<unknown>(paramTotal);
  let s = 0;
  let p = 0;
  for (let u = 0; u < units.length; u++) {
    const unit = units[u]!;
    if (unit.kind === 'interactive') {
      txIds.push(unit.txId);
      txTimeouts.push(unit.timeoutMs ?? 0);
      continue;
    }
    sizes[u] = unit.statements.length;
    for (const statement of unit.statements) {
      sql[s] = statement.sql;
      paramCounts[s] = statement.params.length;
      for (const value of statement.params) params[p++] = value;
      s++;
    }
  }
  return { sizes, txIds, txTimeouts, sql, paramCounts, params };
}

/** Rebuilds per-unit outcomes from a `WireBatchReply`. */
export function decodeReply(batch: WireBatch, reply: WireBatchReply): BatchReply {
  const units = batch.sizes.length;
  const error = reply.error;
  const committed = error === undefined ? units : (reply.committed ?? 0);
  const unitErrors = new Map(reply.unitErrors);
  const rows = new Map(reply.rows);
  const outcomes = new Array<UnitOutcome>(units);
  let s = 0;
  for (let u = 0; u < units; u++) {
    const size = batch.sizes[u]!;
    const unitError = u < committed ? unitErrors.get(u) : error;
    if (unitError !== undefined) {
      outcomes[u] = { ok: false, error: unitError };
      s += size;
      continue;
    }
    const results = new Array<StatementResult>(size);
    for (let i = 0; i < size; i++, s++) {
      const returned = rows.get(s);
      results[i] =
        returned !== undefined
          ? { rows: returned }
          : {
              rows: [],
              numAffectedRows: BigInt(reply.changes[s]!),
              insertId: reply.insertIds[s]!,
            };
    }
    outcomes[u] = { ok: true, results };
  }
  const decoded: BatchReply = { outcomes, commitMs: reply.commitMs, reopened: reply.reopened };
  if (error !== undefined) {
    decoded.error = error;
    decoded.committed = committed;
  }
  return decoded;
}
