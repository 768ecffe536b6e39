/**
 * How walguard reads PostgreSQL values: node-postgres' parsers, except `bigint` (int8).
 *
 * node-postgres returns int8 as a string, so `count(*)`, `bigint` ids and millisecond times
 * would come back as strings on PostgreSQL and as numbers on SQLite, and the same repository
 * code would behave differently. walguard returns an int8 as a number when it is a safe
 * integer (|n| <= 2^53 - 1) and as a `bigint` beyond: never a silently rounded number.
 */
import pg from 'pg';

/** The type parsers walguard's connections use (`types` of a `pg` client or pool). */
export interface PgTypes {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (text: string) => unknown;
}

const INT8_OID = 20;

function parseInt8(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

/** node-postgres' parsers with int8 read as a number or, beyond 2^53, a bigint. */
export const pgTypes: PgTypes = {
  getTypeParser(oid, format = 'text') {
    if (oid === INT8_OID && format === 'text') return parseInt8;
    return pg.types.getTypeParser(oid, format) as (text: string) => unknown;
  },
};
