/**
 * A tokenizer for SQLite's SQL, just deep enough to see what a statement is before any
 * connection prepares it (a PRAGMA takes effect while it is *prepared*, so SQLite cannot be
 * asked first): where the first statement ends, its leading keywords, and its top-level
 * structure (parenthesis depth). It follows SQLite's own tokenizer (tokenize.c) for the
 * things that hide a `;` or a keyword: `--` and `/* … *\/` comments, '…' strings, "…",
 * […] and `…` identifiers; and sqlite3_complete()'s rule that a `CREATE TRIGGER` body's
 * semicolons end the statement only after its `END`. Its quirks too, found by comparing
 * with libsql over every one-character prefix (test/tx/statement-guard.test.ts): a byte-order
 * mark is space; a vertical tab is space only inside a run of spaces; a NUL ends the text
 * handed to SQLite like a `;`.
 */

/** One token: a word (keyword, identifier, number, parameter), a quoted item, or a punctuation mark. */
export interface Token {
  /** `word`: bare word; `quoted`: '…' string or "…"/[…]/`…` identifier; `punct`: one character. */
  readonly kind: 'word' | 'quoted' | 'punct';
  /** Start offset in the SQL text. */
  readonly start: number;
  /** End offset (exclusive). */
  readonly end: number;
  /** Parenthesis depth before the token (a `(` has the depth outside it). */
  readonly depth: number;
}

/** The first statement of a SQL text, tokenized. */
export interface Lexed {
  /** The tokens of the first statement (no comments, no trailing `;`). */
  readonly tokens: readonly Token[];
  /** Offset just past the first statement's last token. */
  readonly end: number;
  /** True when another statement (anything but comments, spaces and `;`) follows it. */
  readonly hasTail: boolean;
}

/** Characters that start a run of space (tokenize.c's CC_SPACE: not a vertical tab). */
const SPACE = new Set([0x20, 0x09, 0x0a, 0x0c, 0x0d]);
/** Characters that continue a run of space (sqlite3Isspace: a vertical tab too). */
const SPACE_RUN = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);
/** The byte-order mark, which SQLite's tokenizer skips as space. */
const BOM = 0xfeff;

function isWordChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || // 0-9
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    c === 0x5f || // _
    c === 0x24 || // $
    c >= 0x80
  );
}

/** Offset of the next token at or after `i`, skipping spaces and comments. */
function skipSpace(sql: string, i: number): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (SPACE.has(c)) {
      i++;
      while (i < n && SPACE_RUN.has(sql.charCodeAt(i))) i++;
    } else if (c === BOM) {
      i++;
    } else if (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d) {
      // The newline is not part of the comment: it starts the next run of space.
      const nl = sql.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl;
    } else if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      const close = sql.indexOf('*/', i + 2);
      i = close < 0 ? n : close + 2;
    } else {
      break;
    }
  }
  return i;
}

/** End of a quoted item starting at `i` (closing quote included; doubled quotes escape). */
function quotedEnd(sql: string, i: number, close: string): number {
  let j = i + 1;
  for (;;) {
    const k = sql.indexOf(close, j);
    if (k < 0) return sql.length;
    if (close !== ']' && sql[k + 1] === close) {
      j = k + 2;
      continue;
    }
    return k + 1;
  }
}

/** Tokenizes the first statement of `sql` (empty statements before it are skipped). */
export function lexFirstStatement(sql: string): Lexed {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = skipSpace(sql, 0);
  let depth = 0;
  let trigger = false;
  let end = i;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 0x3b || c === 0) {
      // `;`: ends the statement, unless inside a trigger body that has not reached END.
      if (tokens.length === 0) {
        i = skipSpace(sql, i + 1);
        end = i;
        continue;
      }
      if (!trigger || upper(sql, tokens[tokens.length - 1]!) === 'END') break;
      tokens.push({ kind: 'punct', start: i, end: i + 1, depth });
      i = skipSpace(sql, i + 1);
      continue;
    }
    let token: Token;
    if (c === 0x27 || c === 0x22 || c === 0x60) {
      token = { kind: 'quoted', start: i, end: quotedEnd(sql, i, sql[i]!), depth };
    } else if (c === 0x5b) {
      token = { kind: 'quoted', start: i, end: quotedEnd(sql, i, ']'), depth };
    } else if (isWordChar(c)) {
      let j = i + 1;
      while (j < n && isWordChar(sql.charCodeAt(j))) j++;
      token = { kind: 'word', start: i, end: j, depth };
    } else {
      token = { kind: 'punct', start: i, end: i + 1, depth };
      if (c === 0x28) depth++;
      else if (c === 0x29 && depth > 0) depth--;
    }
    tokens.push(token);
    end = token.end;
    if (tokens.length <= 6 && !trigger) trigger = startsTrigger(sql, tokens);
    i = skipSpace(sql, token.end);
  }
  let rest = i;
  while (rest < n && (sql.charCodeAt(rest) === 0x3b || sql.charCodeAt(rest) === 0)) {
    rest = skipSpace(sql, rest + 1);
  }
  return { tokens, end, hasTail: rest < n };
}

/** True once the tokens read `[EXPLAIN [QUERY PLAN]] CREATE [TEMP|TEMPORARY] TRIGGER`. */
function startsTrigger(sql: string, tokens: readonly Token[]): boolean {
  const words = tokens.map((t) => upper(sql, t));
  let k = 0;
  if (words[k] === 'EXPLAIN') k += words[k + 1] === 'QUERY' ? 3 : 1;
  if (words[k] !== 'CREATE') return false;
  k++;
  if (words[k] === 'TEMP' || words[k] === 'TEMPORARY') k++;
  return words[k] === 'TRIGGER';
}

/** The token's text, upper-cased (words only; quoted items and punctuation as written). */
export function upper(sql: string, token: Token): string {
  const text = sql.slice(token.start, token.end);
  return token.kind === 'word' ? text.toUpperCase() : text;
}

/** An identifier token's name: unquoted and unescaped; words lower-cased when `fold`. */
export function identifierName(sql: string, token: Token, fold = false): string {
  const text = sql.slice(token.start, token.end);
  if (token.kind === 'word') return fold ? text.toLowerCase() : text;
  const open = text[0]!;
  const close = open === '[' ? ']' : open;
  const inner = text.endsWith(close) && text.length > 1 ? text.slice(1, -1) : text.slice(1);
  return close === ']' ? inner : inner.split(close + close).join(close);
}
