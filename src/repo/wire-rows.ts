/**
 * Rows on their way from a reader thread to the main thread: column-wise (see
 * `reader-protocol.ts` for why), and back to the row objects walguard returns.
 */
import type { WireRows } from './reader-protocol.js';

/** Row objects (all of one statement, so of one shape) as `WireRows`. */
export function toWireRows(rows: readonly Record<string, unknown>[]): WireRows {
  if (rows.length === 0) return { columns: [], values: [] };
  const columns = Object.keys(rows[0]!);
  const values = new Array<unknown[]>(rows.length);
  for (let r = 0; r < rows.length; r++) values[r] = Object.values(rows[r]!);
  return { columns, values };
}

/**
 * Row objects from `WireRows`. BLOBs cross the thread boundary as plain `Uint8Array`s
 * (structured clone drops the `Buffer` class); they become `Buffer`s again, without a copy,
 * as the main thread's reader returns them.
 */
export function fromWireRows(wire: WireRows): Record<string, unknown>[] {
  const { columns, values } = wire;
  const out = new Array<Record<string, unknown>>(values.length);
  for (let r = 0; r < values.length; r++) {
    const raw = values[r]!;
    const row: Record<string, unknown> = {};
    for (let c = 0; c < columns.length; c++) {
      const value = raw[c];
      row[columns[c]!] =
        value instanceof Uint8Array
          ? Buffer.from(value.buffer, value.byteOffset, value.byteLength)
          : value;
    }
    out[r] = row;
  }
  return out;
}
