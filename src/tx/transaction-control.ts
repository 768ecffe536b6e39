/**
 * Which statements a unit may not run: the one place writers ask before they execute a unit.
 *
 * A batch is one transaction that the writer begins and commits. A unit's statement that
 * ends, starts or escapes that transaction (`COMMIT`, `ROLLBACK`, `BEGIN`, a savepoint of the
 * writer's own, a session setting that outlives the unit) would make the writer's
 * acknowledgements and rejections of the *other* units of the batch untrue, so it is refused
 * before anything of its unit runs (`INVALID_ARGUMENT`). The check reads the statement's
 * first words (after comments); it is enough because each statement a writer runs holds one
 * command (PostgreSQL's extended protocol refuses several; SQLite prepares one).
 *
 * Inside an interactive transaction the app's savepoints (Kysely's `trx.savepoint()`) are
 * allowed; savepoints named `wg_…` belong to the writer and are refused.
 */
import { WalguardError } from '../errors.js';

/** Where a statement runs: a fixed unit (`write()`, `defer()`), or an interactive transaction. */
export type StatementPlace = 'unit' | 'transaction';

/** Leading words that end, start or escape the batch's transaction, wherever they run. */
const ALWAYS = new Set([
  'BEGIN',
  'START',
  'COMMIT',
  'END',
  'ABORT',
  'PREPARE TRANSACTION',
  'SET',
  'RESET',
  'DISCARD',
]);

/** Savepoint commands: refused in a fixed unit; in a transaction, only on the writer's own. */
const SAVEPOINTS = new Set(['SAVEPOINT', 'RELEASE', 'ROLLBACK']);

/** A call of PostgreSQL's `set_config()`, anywhere in the statement. */
const SET_CONFIG = /\bset_config\s*\(/i;

/** Strips leading whitespace and comments. */
function skipComments(sql: string): string {
  let s = sql.trimStart();
  for (;;) {
    if (s.startsWith('--')) {
      const end = s.indexOf('\n');
      s = end < 0 ? '' : s.slice(end + 1).trimStart();
    } else if (s.startsWith('/*')) {
      const end = s.indexOf('*/');
      s = end < 0 ? '' : s.slice(end + 2).trimStart();
    } else {
      return s;
    }
  }
}

/**
 * The statement's leading command when `place` may not run it (e.g. `COMMIT`,
 * `ROLLBACK TO SAVEPOINT wg_unit`), or `undefined` when it may.
 */
export function refusedStatement(sql: string, place: StatementPlace): string | undefined {
  // Apps send the same few texts again and again (Kysely's SQL has its values bound): the
  // verdicts of recent ones are kept (~3 µs of a lone write's ~100 µs of CPU, profiled).
  if (sql.length > MEMO_MAX_LENGTH) return judge(sql, place);
  const memo = verdicts[place];
  const known = memo.get(sql);
  if (known !== undefined) return known === ALLOWED ? undefined : known;
  const verdict = judge(sql, place);
  if (memo.size >= MEMO_SIZE) memo.clear();
  memo.set(sql, verdict ?? ALLOWED);
  return verdict;
}

/** How many recent verdicts each place keeps, for texts up to how many characters (≤ 2 MB). */
const MEMO_SIZE = 512;
const MEMO_MAX_LENGTH = 4096;
const ALLOWED = '';
const verdicts: Record<StatementPlace, Map<string, string>> = {
  unit: new Map(),
  transaction: new Map(),
};

function judge(sql: string, place: StatementPlace): string | undefined {
  // PostgreSQL's set_config(name, value, false) is a session SET in a function call.
  if (SET_CONFIG.test(sql)) return 'SELECT set_config(…)';
  const words = skipComments(sql).split(/[\s;(]+/, 4);
  const first = (words[0] ?? '').toUpperCase();
  // `SET CONSTRAINTS` and `SET LOCAL` last until the transaction ends, so they leak into the
  // batch's later units just as a session `SET` does: all are refused.
  const two = `${first} ${(words[1] ?? '').toUpperCase()}`;
  if (ALWAYS.has(first) || ALWAYS.has(two)) return shown(words, first === 'PREPARE' ? 2 : 1);
  if (!SAVEPOINTS.has(first)) return undefined;
  if (place === 'unit') return shown(words, 3);
  // ROLLBACK alone ends the transaction; ROLLBACK TO [SAVEPOINT] name, RELEASE [SAVEPOINT]
  // name and SAVEPOINT name are the app's own unless the name is the writer's.
  const rest = words.slice(1).map((w) => w.toUpperCase());
  if (first === 'ROLLBACK' && rest[0] !== 'TO') return shown(words, 1);
  const name = rest.find((w) => w !== 'TO' && w !== 'SAVEPOINT') ?? '';
  return name.replace(/"/g, '').startsWith('WG_') ? shown(words, 4) : undefined;
}

function shown(words: string[], n: number): string {
  return words
    .slice(0, n)
    .filter((w) => w !== '')
    .join(' ')
    .toUpperCase();
}

/** The `INVALID_ARGUMENT` error of a refused statement. */
export function refusedStatementError(command: string, place: StatementPlace): WalguardError {
  const where = place === 'unit' ? 'a unit' : 'a transaction';
  return new WalguardError(
    'INVALID_ARGUMENT',
    `\`${command}\` cannot run inside ${where}: walguard begins and commits each batch's transaction itself, and this statement would end, start or escape it (or change a setting beyond the unit). Nothing of the unit ran; use db.transaction() (with trx.savepoint() for nested rollbacks) instead`,
    { details: { statement: command } },
  );
}
