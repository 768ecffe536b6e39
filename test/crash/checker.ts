/**
 * Checks one materialised crash state against what the workload had been
 * told before the crash (the contract's lines 1-3: acknowledged means
 * durable; all or nothing per unit; submission order).
 *
 * It opens the state's database with `libsql` directly, in this process:
 * each state is a new file (a new inode), so nothing SQLite caches per inode
 * is shared between states. `close()` leaks the connection's three fds and
 * ~0.4 MB (libsql-js #228), so one process can check a few thousand states;
 * run bigger explorations in batches in child processes (explore-cli.ts).
 *
 * Text columns are read as BLOBs: libsql aborts the process when it decodes
 * invalid UTF-8 as TEXT, and a damaged state can hold any bytes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type LibsqlDatabase, type LibsqlError, openLibsql } from './libsql.js';
import { payloadMatchesSql } from './workload-schema.js';

/** What to check a state against. */
export interface CheckOptions {
  /** Units acknowledged before the crash: each must be present and complete. */
  acked: Iterable<number>;
  /** Units accepted as deferred: each may be absent; if present, complete and in order. */
  deferred?: Iterable<number>;
  /** Units reported as failed: each must be absent. */
  rejected?: Iterable<number>;
  /**
   * Check submission order (default true): unit ids must grow in submission
   * order, and no known unit (acked, deferred or present) may be missing
   * while a unit with a greater id is present.
   */
  checkOrder?: boolean;
  /** Encryption key of the database, if it is encrypted. */
  encryptionKey?: string;
  /** File name of the database inside the state folder (default `db.sqlite`). */
  dbFile?: string;
  /** `PRAGMA integrity_check` (default), `quick_check`, or none. */
  integrity?: 'full' | 'quick' | 'none';
  /**
   * Reads the units present from the open state: unit id → complete (false: present in part).
   * Default: the tables of workload-schema.ts. A workload with a schema of its own (the
   * power-cut demo's chat messages) passes its own reader; it must not decode TEXT (see the
   * file header), and it may throw for a database it cannot read (the state is then damaged).
   */
  presentUnits?: (db: LibsqlDatabase) => Map<number, boolean>;
}

/** The verdict on one state. */
export interface CheckResult {
  /** Nothing is wrong. */
  ok: boolean;
  /** The database is damaged: it cannot be opened or read, fails the integrity check, or holds a partial unit. */
  corrupt: boolean;
  /** Whether the database file exists in the state (a missing file reads as empty). */
  dbExists: boolean;
  /** Error opening or reading the database (code and message), if any. */
  error?: string;
  /** Lines of the integrity check; `['ok']` when it passed, `[]` when not run. */
  integrity: string[];
  /** Number of units present (complete or not). */
  present: number;
  /** Acknowledged units missing. */
  lostAcked: number[];
  /** Units present but incomplete or damaged (including parts without their unit). */
  partial: number[];
  /** Units reported failed that are present. */
  rejectedPresent: number[];
  /** Known units missing although a later unit is present (not counting lost acked ones). */
  outOfOrder: number[];
  /** One line per problem found, for reports. */
  problems: string[];
}

const describe = (err: unknown): string => {
  const e = err as LibsqlError;
  return e?.code ? `${e.code}: ${e.message}` : String(err);
};

const limitList = (ids: number[]): string =>
  ids.length <= 10 ? ids.join(', ') : `${ids.slice(0, 10).join(', ')}, … (${ids.length})`;

/** Checks the crash state in folder `dir`. Never throws for a damaged database. */
export function checkState(dir: string, options: CheckOptions): CheckResult {
  const acked = [...options.acked];
  const deferred = [...(options.deferred ?? [])];
  const rejected = new Set(options.rejected ?? []);
  const path = join(dir, options.dbFile ?? 'db.sqlite');
  const result: CheckResult = {
    ok: false,
    corrupt: false,
    dbExists: existsSync(path),
    integrity: [],
    present: 0,
    lostAcked: [],
    partial: [],
    rejectedPresent: [],
    outOfOrder: [],
    problems: [],
  };

  /** Unit id → complete (false: partial or damaged, or parts without the unit row). */
  const units = new Map<number, boolean>();
  if (result.dbExists) {
    let db: LibsqlDatabase | undefined;
    try {
      db = openLibsql(path, options.encryptionKey ? { encryptionKey: options.encryptionKey } : {});
      const mode = options.integrity ?? 'full';
      if (mode !== 'none') {
        const fn = mode === 'full' ? 'pragma_integrity_check' : 'pragma_quick_check';
        const col = mode === 'full' ? 'integrity_check' : 'quick_check';
        const rows = db.prepare(`SELECT CAST(${col} AS BLOB) FROM ${fn}`).raw().all() as [
          Uint8Array,
        ][];
        result.integrity = rows.map(([b]) => Buffer.from(b).toString('latin1'));
        if (result.integrity.length !== 1 || result.integrity[0] !== 'ok') {
          result.corrupt = true;
          result.problems.push(`integrity check: ${result.integrity.slice(0, 5).join('; ')}`);
        }
      }
      if (options.presentUnits !== undefined) {
        for (const [id, complete] of options.presentUnits(db)) units.set(id, complete);
      } else {
        const tables = db
          .prepare(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('units', 'unit_parts')",
          )
          .raw()
          .get() as [number];
        if (tables[0] === 1) {
          result.corrupt = true;
          result.problems.push('only one of the tables units, unit_parts exists');
        } else if (tables[0] === 2) {
          // One row per unit, verified in SQL (reading ~1,000 payload BLOBs into JS
          // cost 2.5 ms a state, twice the integrity check).
          const unitRows = db
            .prepare(
              `SELECT u.id, u.parts, ${payloadMatchesSql('u.payload', 'u.id', '-1')},
               (SELECT count(*) FROM unit_parts p WHERE p.unit_id = u.id),
               (SELECT count(*) FROM unit_parts p WHERE p.unit_id = u.id
                  AND p.part >= 0 AND p.part < u.parts
                  AND ${payloadMatchesSql('p.payload', 'p.unit_id', 'p.part')})
             FROM units u`,
            )
            .raw()
            .all() as unknown[][];
          for (const [id, n, unitOk, partCount, partsOk] of unitRows) {
            const complete =
              unitOk === 1 && Number(partCount) === Number(n) && Number(partsOk) === Number(n);
            units.set(Number(id), complete);
          }
          const orphans = db
            .prepare(
              'SELECT DISTINCT unit_id FROM unit_parts WHERE unit_id NOT IN (SELECT id FROM units)',
            )
            .raw()
            .all() as unknown[][];
          for (const [id] of orphans) units.set(Number(id), false);
        }
      }
    } catch (err) {
      result.corrupt = true;
      result.error = describe(err);
      result.problems.push(`cannot read the database: ${result.error}`);
    } finally {
      try {
        db?.close();
      } catch {
        // A failed close changes nothing in the verdict.
      }
    }
  }

  // All or nothing per unit.
  const present = new Set(units.keys());
  result.present = present.size;
  result.partial = [...units]
    .filter(([, complete]) => !complete)
    .map(([id]) => id)
    .sort((a, b) => a - b);
  if (result.partial.length > 0) {
    result.corrupt = true;
    result.problems.push(`partial units: ${limitList(result.partial)}`);
  }

  // Acknowledged means durable; failed means absent.
  result.lostAcked = acked.filter((id) => !present.has(id));
  if (result.lostAcked.length > 0) {
    result.problems.push(`lost acknowledged units: ${limitList(result.lostAcked)}`);
  }
  result.rejectedPresent = [...rejected].filter((id) => present.has(id));
  if (result.rejectedPresent.length > 0) {
    result.problems.push(`failed units present: ${limitList(result.rejectedPresent)}`);
  }

  // Submission order: the units present are a prefix of the known ones.
  if (options.checkOrder ?? true) {
    const maxPresent = [...present].reduce((a, b) => Math.max(a, b), -Infinity);
    const lost = new Set(result.lostAcked);
    const known = new Set<number>([...acked, ...deferred, ...present]);
    result.outOfOrder = [...known]
      .filter((id) => id < maxPresent && !present.has(id) && !lost.has(id) && !rejected.has(id))
      .sort((a, b) => a - b);
    if (result.outOfOrder.length > 0) {
      result.problems.push(
        `units missing before present unit ${maxPresent}: ${limitList(result.outOfOrder)}`,
      );
    }
  }

  result.ok = result.problems.length === 0;
  return result;
}
