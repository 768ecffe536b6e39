/**
 * Text that is not UTF-8 must never reach libsql's row conversion: libsql 0.5.29 unwraps
 * `str::from_utf8` on every TEXT value it returns, and its release build aborts on a panic
 * (measured: exit 134, on the reader, the writer with RETURNING, and in transactions alike).
 * Such text gets into a file through SQL (`CAST(x'ff' AS TEXT)`, `blob || 'text'`), other
 * tools, or damage; libsql also cuts a TEXT value at its first NUL byte, silently.
 *
 * Decision: such a value comes back as a `Uint8Array` of its exact bytes — nothing replaced,
 * nothing lost — and `check()` names the columns that hold it (`invalidTextReport`). The
 * statement is rewritten before it is prepared so that SQLite turns exactly those values into
 * BLOBs; valid text still comes back as a string, untouched:
 * - a SELECT (or VALUES, or WITH … SELECT) is wrapped: `WITH r(c0, c1, …) AS (<sql>)
 *   SELECT guard(c0) AS "<name0>", … FROM r` (the CTE's column list keeps duplicate names
 *   apart; its rows keep the statement's order);
 * - an INSERT/UPDATE/DELETE … RETURNING gets each returned expression wrapped in its
 *   RETURNING list (DML cannot be a subquery); the rewrite is accepted only when SQLite
 *   prepares it with the same column names, else the statement is refused.
 * PRAGMA and EXPLAIN rows (names from the schema, opcodes) are not rewritten.
 *
 * The test: a TEXT value is returned as bytes when it holds a NUL, or when SQLite's REGEXP
 * (its regexp.c decodes a malformed sequence — stray or missing continuation bytes,
 * overlong forms, surrogates, code points past U+10FFFF — as U+FFFD) finds U+FFFD in it
 * once its real U+FFFD characters are replaced. Checked against `buffer.isUtf8` (WHATWG's
 * definition, the same as Rust's) on 200,000 random byte strings: no difference.
 * Cost, measured on 10k-row reads (bench/micro/text-guard.ts): 1.2-2.3x the unguarded read time for
 * rows of short to 300-byte text, most of it the REGEXP scan; nothing for integer columns
 * beyond a `typeof`.
 */

import { identifierName, type Token, upper } from './sql-lexer.js';
import type { StatementFacts } from './statement-guard.js';

/** A U+FFFD character class for REGEXP (a class, so regexp.c cannot skip ahead by bytes). */
const REPLACEMENT_CLASS = "'[\uFFFD]'";

/** SQL that is true when `expr` is TEXT that libsql cannot return as a string. */
export function invalidTextSql(expr: string): string {
  return `(typeof(${expr}) = 'text' AND (instr(${expr}, char(0)) > 0 OR (${expr} REGEXP ${REPLACEMENT_CLASS} AND replace(${expr}, '\uFFFD', 'x') REGEXP ${REPLACEMENT_CLASS})))`;
}

/** `expr` as SQLite should return it: its bytes as a BLOB when it is such text. */
function guard(expr: string): string {
  return `CASE WHEN ${invalidTextSql(expr)} THEN CAST(${expr} AS BLOB) ELSE ${expr} END`;
}

/** A double-quoted SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The CTE walguard wraps a read in (a name no app table is likely to share). */
const ROWS = '"walguard_guarded_rows"';

/**
 * The guarded forms of a statement that returns rows named `names`, to try in order (the
 * first that SQLite prepares with the same column names wins); empty when the statement is
 * not rewritten (PRAGMA, EXPLAIN).
 */
export function guardedForms(
  sql: string,
  facts: StatementFacts,
  names: readonly string[],
): string[] {
  if (facts.explain || names.length === 0) return [];
  const { tokens } = facts.lexed;
  const body = sql.slice(tokens[0]!.start, facts.lexed.end);
  switch (facts.verb) {
    case 'SELECT':
    case 'VALUES': {
      const columns = names.map((_, i) => `c${i}`);
      const select = names.map((name, i) => `${guard(columns[i]!)} AS ${quoteIdentifier(name)}`);
      return [
        `WITH ${ROWS}(${columns.join(', ')}) AS (\n${body}\n) SELECT ${select.join(', ')} FROM ${ROWS}`,
      ];
    }
    case 'INSERT':
    case 'REPLACE':
    case 'UPDATE':
    case 'DELETE':
      return returningForms(sql, tokens, names);
    default:
      return [];
  }
}

/** Rewrites of the RETURNING list, one per candidate RETURNING keyword, last first. */
function returningForms(sql: string, tokens: readonly Token[], names: readonly string[]): string[] {
  const forms: string[] = [];
  for (let r = tokens.length - 2; r >= 0; r--) {
    const t = tokens[r]!;
    if (t.depth !== 0 || t.kind !== 'word' || upper(sql, t) !== 'RETURNING') continue;
    const list = rewriteReturningList(sql, tokens.slice(r + 1), names);
    if (list !== undefined) {
      forms.push(`${sql.slice(tokens[0]!.start, tokens[r + 1]!.start)}${list}`);
    }
  }
  return forms;
}

/** The RETURNING items with each value guarded and named as before, or undefined. */
function rewriteReturningList(
  sql: string,
  items: readonly Token[],
  names: readonly string[],
): string | undefined {
  const depth = items[0]!.depth;
  const groups: Token[][] = [[]];
  for (const t of items) {
    if (t.depth === depth && t.kind === 'punct' && sql[t.start] === ',') groups.push([]);
    else groups[groups.length - 1]!.push(t);
  }
  const isStar = (g: Token[]) => g.length === 1 && sql[g[0]!.start] === '*';
  const stars = groups.filter(isStar).length;
  const plain = groups.length - stars;
  if (groups.some((g) => g.length === 0)) return undefined;
  const perStar = stars === 0 ? 0 : (names.length - plain) / stars;
  if (!Number.isInteger(perStar) || perStar < 0 || (stars === 0 && plain !== names.length)) {
    return undefined;
  }
  const out: string[] = [];
  let n = 0;
  for (const group of groups) {
    if (isStar(group)) {
      for (let i = 0; i < perStar; i++, n++) {
        const name = quoteIdentifier(names[n]!);
        out.push(`${guard(name)} AS ${name}`);
      }
      continue;
    }
    const name = names[n++]!;
    let last = group.length;
    const alias = group[group.length - 1]!;
    const before = group[group.length - 2];
    if (before !== undefined && before.kind === 'word' && upper(sql, before) === 'AS') {
      last -= 2;
    } else if (
      before !== undefined &&
      alias.kind !== 'punct' &&
      sql[before.start] !== '.' &&
      identifierName(sql, alias) === name
    ) {
      last -= 1;
    }
    if (last <= 0) return undefined;
    const expr = sql.slice(group[0]!.start, group[last - 1]!.end);
    out.push(`${guard(`(${expr})`)} AS ${quoteIdentifier(name)}`);
  }
  return out.join(', ');
}

/**
 * One message per column of every ordinary table that holds TEXT libsql cannot return as a
 * string (not UTF-8, or holding a NUL), with the count; `rows` runs SQL and returns raw rows.
 * Reads every row of every table: for `check('full')`, never at open.
 */
export async function invalidTextReport(
  rows: (sql: string) => unknown[][] | Promise<unknown[][]>,
): Promise<string[]> {
  const columns = (await rows(
    `SELECT m.name, p.name FROM sqlite_schema AS m, pragma_table_info(m.name) AS p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND m.sql NOT LIKE 'CREATE VIRTUAL %' AND NOT ${invalidTextSql('m.name')} AND NOT ${invalidTextSql('p.name')} ORDER BY m.name, p.cid`,
  )) as [string, string][];
  const byTable = new Map<string, string[]>();
  for (const [table, column] of columns) {
    const list = byTable.get(table) ?? [];
    list.push(column);
    byTable.set(table, list);
  }
  const messages: string[] = [];
  for (const [table, names] of byTable) {
    const counts = names.map(
      (c) => `count(*) FILTER (WHERE ${invalidTextSql(quoteIdentifier(c))})`,
    );
    const [found] = (await rows(
      `SELECT ${counts.join(', ')} FROM ${quoteIdentifier(table)}`,
    )) as number[][];
    names.forEach((column, i) => {
      const n = Number(found?.[i] ?? 0);
      if (n > 0) {
        messages.push(
          `${table}.${column}: ${n} value${n === 1 ? '' : 's'} of TEXT ${n === 1 ? 'is' : 'are'} not valid UTF-8 (or hold a NUL); reads return ${n === 1 ? 'it' : 'them'} as a Uint8Array of the exact bytes`,
        );
      }
    });
  }
  return messages;
}
