/**
 * What a crash state of the chat database holds, for the power-loss checker
 * (test/crash/checker.ts, `presentUnits`): every message, and whether its unit is complete.
 * A message's unit is the message row and its conversation's `updated_at` bump (one
 * `appendMessage()` in walguard, one `batch()` in the naive client): complete when the
 * conversation exists and its `updated_at` is at least the message's `created_at`.
 *
 * Nothing is decoded as TEXT (libsql aborts the process on invalid UTF-8, and a damaged state
 * can hold any bytes): ids and times are integers, the join compares in SQL.
 */
import type { LibsqlDatabase } from '../test/crash/libsql.js';

/** Message id → its unit is complete. Throws when the tables cannot be read (a damaged state). */
export function presentMessages(db: LibsqlDatabase): Map<number, boolean> {
  const rows = db
    .prepare(
      `SELECT m.id, coalesce(c.updated_at >= m.created_at, 0)
         FROM messages m LEFT JOIN conversations c ON c.id = m.conversation_id`,
    )
    .raw()
    .all() as [number | bigint, number | bigint][];
  return new Map(rows.map(([id, complete]) => [Number(id), Number(complete) === 1]));
}
