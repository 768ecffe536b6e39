/**
 * The schema every crash workload writes and the checker reads.
 *
 * A unit (one acknowledged write) is one row in `units` plus `parts` rows in
 * `unit_parts`, all written in one transaction (or one walguard unit). A
 * crash that applies a unit partly leaves a `units` row whose parts are
 * missing, or parts without their `units` row: the checker sees both.
 * Payloads are derived from (unit, part, size), and say their own size, so
 * the checker can tell a damaged payload from a good one without knowing how
 * the workload sized it.
 */

/** DDL of the workload tables (idempotent). */
export const WORKLOAD_SCHEMA = `
CREATE TABLE IF NOT EXISTS units (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  parts INTEGER NOT NULL,
  payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS unit_parts (
  unit_id INTEGER NOT NULL,
  part INTEGER NOT NULL,
  payload TEXT NOT NULL,
  PRIMARY KEY (unit_id, part)
);
`;

/** SQL inserting a `units` row: parameters id, kind, parts, payload. */
export const INSERT_UNIT = 'INSERT INTO units (id, kind, parts, payload) VALUES (?, ?, ?, ?)';
/** SQL inserting a `unit_parts` row: parameters unit_id, part, payload. */
export const INSERT_PART = 'INSERT INTO unit_parts (unit_id, part, payload) VALUES (?, ?, ?)';

/**
 * The payload of part `part` of unit `unit` (part -1 is the `units` row):
 * its header `u<unit>p<part>n<size>:` repeated and cut to `size` bytes. A
 * payload is thus checkable from its own bytes and length, in SQL too
 * ({@link payloadMatchesSql}).
 */
export function payloadFor(unit: number, part: number, size: number): string {
  const head = `u${unit}p${part}n${size}:`;
  return head.repeat(Math.ceil(size / head.length)).slice(0, size);
}

/**
 * Whether `bytes` is the payload {@link payloadFor} makes for (unit, part).
 * Anything but bytes (NULL or a number, in a damaged database) is not.
 */
export function isPayloadOf(bytes: unknown, unit: number, part: number): boolean {
  if (!(bytes instanceof Uint8Array)) return false;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buf.equals(Buffer.from(payloadFor(unit, part, buf.length), 'latin1'));
}

/**
 * An SQL expression, true when the payload column `payload` holds what
 * {@link payloadFor} makes for the unit and part expressions given, at the
 * payload's own length: it starts with its header and repeats with the
 * header's period. Compares bytes only: nothing is decoded as TEXT.
 */
export function payloadMatchesSql(payload: string, unit: string, part: string): string {
  const b = `CAST(${payload} AS BLOB)`;
  const len = `length(${b})`;
  const head = `CAST('u' || CAST(${unit} AS INTEGER) || 'p' || CAST(${part} AS INTEGER) || 'n' || ${len} || ':' AS BLOB)`;
  // coalesce: substr() of an empty blob is NULL, and an empty payload is valid at size 0.
  return (
    `coalesce(substr(${b}, 1, length(${head})) = substr(${head}, 1, ${len})` +
    ` AND substr(${b}, length(${head}) + 1) = substr(${b}, 1, ${len} - length(${head})), ${len} = 0)`
  );
}
