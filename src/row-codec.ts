/**
 * Values across the engine boundary: parameters as libsql 0.5.29 must receive them, and rows
 * as walguard returns them. Shared by the writer (worker thread) and the reader.
 */

/**
 * Converts parameters to what the engine binds: integral numbers become BigInts (libsql
 * 0.5.29 binds every JS number as REAL, measured: `2` stored in a TEXT column reads back
 * '2.0', and `typeof(?)` says 'real'), booleans become 0/1 (libsql 0.5.29 panics and aborts
 * the process on a boolean), Uint8Arrays that lost their Buffer class crossing the
 * thread boundary become Buffers again (no copy).
 */
export function bindable(params: readonly unknown[]): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < params.length; i++) {
    const value = params[i];
    let mapped: unknown = value;
    if (typeof value === 'number') {
      if (Number.isSafeInteger(value)) mapped = BigInt(value);
    } else if (typeof value === 'boolean') mapped = value ? 1n : 0n;
    else if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
      mapped = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
    if (mapped !== value) {
      out ??= params.slice();
      out[i] = mapped;
    }
  }
  return out ?? (params as unknown[]);
}

/**
 * Builds row objects from raw rows, with the statement's column `names` (read once when it
 * was prepared). Raw mode is used because libsql's object rows carry an extra `_metadata`
 * key and return BLOBs as ArrayBuffer, while raw rows return Buffers.
 */
export function toObjects(
  names: readonly string[],
  rows: readonly unknown[][],
): Record<string, unknown>[] {
  if (rows.length === 0) return [];
  const out = new Array<Record<string, unknown>>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const raw = rows[r]!;
    const row: Record<string, unknown> = {};
    for (let c = 0; c < names.length; c++) row[names[c]!] = raw[c];
    out[r] = row;
  }
  return out;
}
