/**
 * Which statements a unit may run (contract line 2: no unit can end, start or escape the
 * batch's transaction; line 7: the settings verified at open stay in force).
 *
 * Strategy: classify the text before any connection prepares it — a PRAGMA takes effect
 * while it is prepared (measured: preparing `EXPLAIN PRAGMA synchronous = 0` set it), so
 * asking SQLite first is not safe for those. A statement's kind is decided by its first
 * keyword in SQLite's grammar (after `EXPLAIN [QUERY PLAN]`, and after a `WITH` clause for
 * the main verb), which `sql-lexer.ts` reads past comments, quotes and empty statements.
 * SQLite then confirms the rest: the writer checks after every unit that the batch's
 * transaction is still open (see `writer.ts`).
 *
 * Refused everywhere, with `INVALID_ARGUMENT`, before anything ran:
 * - BEGIN, COMMIT, END, ROLLBACK (the batch's transaction is walguard's);
 * - ATTACH, DETACH, VACUUM (they cannot run inside a transaction, or escape it);
 * - a PRAGMA that sets a connection setting (one unit would change it for every later unit
 *   and read), or runs a checkpoint (that is `db.checkpoint()`);
 * - text holding more than one statement (libsql runs only the first, silently).
 * SAVEPOINT, RELEASE and ROLLBACK TO are allowed inside an interactive transaction (Kysely's
 * savepoints), except on walguard's own savepoint name; in a `write()`/`defer()` unit or a
 * plain `db.kysely` write they are refused (nothing could release them).
 * `EXPLAIN` of any of these is allowed (it does not run the statement), except a PRAGMA.
 */
import { WalguardError } from '../errors.js';
import { identifierName, type Lexed, lexFirstStatement, type Token, upper } from './sql-lexer.js';

/** The savepoint walguard opens around each unit; reserved. */
export const UNIT_SAVEPOINT = 'walguard_unit';

/** Where a statement is about to run. */
export type StatementContext =
  /** A `write()`/`defer()`/Kysely write unit, in the batch's transaction. */
  | 'unit'
  /** A statement of an interactive transaction (under its savepoint). */
  | 'transaction'
  /** The reader connection. */
  | 'read';

/** What the guard learnt about a statement. */
export interface StatementFacts {
  /** The statement's main keyword, upper-cased: SELECT, INSERT, PRAGMA, COMMIT, … ('' when empty). */
  readonly verb: string;
  /** True for `EXPLAIN` and `EXPLAIN QUERY PLAN`. */
  readonly explain: boolean;
  /** The tokens of the statement. */
  readonly lexed: Lexed;
  /** Why the statement is refused in every context, if it is. */
  readonly refused: string | undefined;
  /** For SAVEPOINT, RELEASE and ROLLBACK TO: the savepoint's name (case-folded). */
  readonly savepoint: string | undefined;
}

/** PRAGMAs that take an argument without changing a connection setting. */
const PRAGMAS_WITH_ARGUMENT = new Set([
  'table_info',
  'table_xinfo',
  'table_list',
  'index_list',
  'index_info',
  'index_xinfo',
  'foreign_key_list',
  'foreign_key_check',
  'integrity_check',
  'quick_check',
  'user_version',
  'application_id',
  'defer_foreign_keys',
  'optimize',
  'incremental_vacuum',
]);

/** A short quote of the statement for messages. */
function quote(sql: string, lexed: Lexed): string {
  const first = lexed.tokens[0];
  const text = (first === undefined ? sql : sql.slice(first.start, lexed.end))
    .replace(/\s+/g, ' ')
    .trim();
  return `\`${text.length > 60 ? `${text.slice(0, 57)}...` : text}\``;
}

/** Reads what a statement is (see the file header); never prepares it. */
export function statementFacts(sql: string): StatementFacts {
  const lexed = lexFirstStatement(sql);
  const { tokens } = lexed;
  const word = (k: number) => (tokens[k] === undefined ? '' : upper(sql, tokens[k]!));
  let k = 0;
  let explain = false;
  if (word(0) === 'EXPLAIN') {
    explain = true;
    k = word(1) === 'QUERY' && word(2) === 'PLAN' ? 3 : 1;
  }
  let verb = word(k);
  if (verb === 'WITH') verb = mainVerbAfterWith(sql, tokens, k);
  const said = quote(sql, lexed);
  let refused: string | undefined;
  let savepoint: string | undefined;
  if (lexed.hasTail) {
    refused = `${said} is followed by more statements: libsql runs only the first, silently. Run each statement as its own query (several in one write() unit: return an array of them)`;
  } else if (verb === 'PRAGMA') {
    refused = pragmaRefusal(sql, tokens, k, said);
  } else if (!explain) {
    if (
      verb === 'BEGIN' ||
      verb === 'COMMIT' ||
      verb === 'END' ||
      (verb === 'ROLLBACK' && !tokens.some((t) => upper(sql, t) === 'TO'))
    ) {
      refused = `${said} would end or start the transaction walguard commits for a whole batch of callers. Use db.transaction() (or db.kysely.transaction()) for a transaction of your own; walguard begins and commits it`;
    } else if (verb === 'ATTACH' || verb === 'DETACH') {
      refused = `${said}: ATTACH and DETACH cannot run inside walguard's batch transaction, and a unit may not reach databases outside the one walguard guards`;
    } else if (verb === 'VACUUM') {
      refused = `${said}: VACUUM cannot run inside walguard's batch transaction. For a copy, use db.backup() (a verified VACUUM INTO); to reclaim space, run the CLI's maintenance command while the database is closed`;
    } else if (verb === 'SAVEPOINT' || verb === 'RELEASE' || verb === 'ROLLBACK') {
      const last = tokens[tokens.length - 1];
      savepoint = last === undefined ? '' : identifierName(sql, last, true);
    }
  }
  return { verb, explain, lexed, refused, savepoint };
}

/** The main verb of a statement that starts with a WITH clause (the first one at depth 0). */
function mainVerbAfterWith(sql: string, tokens: readonly Token[], from: number): string {
  for (let k = from + 1; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.depth !== 0 || t.kind !== 'word') continue;
    const w = upper(sql, t);
    if (
      w === 'SELECT' ||
      w === 'VALUES' ||
      w === 'INSERT' ||
      w === 'REPLACE' ||
      w === 'UPDATE' ||
      w === 'DELETE'
    ) {
      return w;
    }
  }
  return 'WITH';
}

/** Why a PRAGMA is refused, or undefined when it may run. */
function pragmaRefusal(
  sql: string,
  tokens: readonly Token[],
  at: number,
  said: string,
): string | undefined {
  // PRAGMA [schema.]name [= value | (value)]
  let k = at + 1;
  if (tokens[k + 1] !== undefined && sql[tokens[k + 1]!.start] === '.') k += 2;
  const nameToken = tokens[k];
  if (nameToken === undefined) return undefined;
  const name = identifierName(sql, nameToken, true);
  const argument = tokens.length > k + 1;
  if (name === 'wal_checkpoint') {
    return `${said}: checkpoints run between batches, never inside one; use db.checkpoint(mode)`;
  }
  if (!argument || PRAGMAS_WITH_ARGUMENT.has(name)) return undefined;
  return `${said} would change the connection setting \`${name}\`. walguard applies and verifies each connection's settings at open (see the options), and a unit's PRAGMA would change it for every later unit and read; set it through the options, or read it with \`PRAGMA ${name}\``;
}

/** Why `facts` may not run in `context`, or undefined when it may. */
export function refusalIn(facts: StatementFacts, context: StatementContext): string | undefined {
  if (facts.refused !== undefined) return facts.refused;
  if (facts.savepoint === undefined) return undefined;
  if (context !== 'transaction') {
    return `A savepoint statement (${facts.verb}) cannot run in a single write: nothing would release or roll it back before the batch's other units run. Use savepoints inside db.transaction() (trx.savepoint(), as Kysely offers)`;
  }
  if (facts.savepoint === UNIT_SAVEPOINT) {
    return `The savepoint name \`${UNIT_SAVEPOINT}\` is walguard's own (each unit runs under it); use another name`;
  }
  return undefined;
}

/** Throws `INVALID_ARGUMENT` when the statement `sql` (read as `facts`) may not run in `context`. */
export function assertAllowed(facts: StatementFacts, sql: string, context: StatementContext): void {
  const reason = refusalIn(facts, context);
  if (reason !== undefined) throw refusal(reason, sql);
}

/** The `INVALID_ARGUMENT` error for a statement refused for `reason`. */
export function refusal(reason: string, sql: string): WalguardError {
  return new WalguardError('INVALID_ARGUMENT', `Refused before it ran: ${reason}`, {
    details: { statement: sql.slice(0, 200) },
  });
}

/** Throws `INVALID_ARGUMENT` when `sql` may not run in `context`; returns its facts otherwise. */
export function checkStatement(sql: string, context: StatementContext): StatementFacts {
  const facts = statementFacts(sql);
  assertAllowed(facts, sql, context);
  return facts;
}
