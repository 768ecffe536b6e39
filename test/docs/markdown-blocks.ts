/**
 * The TypeScript blocks of the project's Markdown, and what each is (see README.md,
 * "Examples in the docs"):
 *
 * - ```` ```ts ```` — a complete program: compiled against the built package and run to the
 *   end in a fresh folder.
 * - ```` ```ts fragment ```` — part of a program: type-checked, never run. The values it
 *   assumes come from its document's prelude (below) or the default one (`db`, `DB`).
 * - ```` ```ts signature ```` — a signature in the docs' notation (`…`, `column`): shown,
 *   not compiled.
 *
 * Any other ```` ```ts … ```` info string is an error, so that no block escapes by a typo.
 * A document's prelude is an HTML comment (invisible on GitHub) holding declarations:
 *
 *     <!-- doc-test prelude
 *     import type { Repository } from 'walguard';
 *     declare const notes: Repository<DB, 'notes'>;
 *     -->
 */
import fs from 'node:fs';
import path from 'node:path';

/** What a block is. */
export type BlockKind = 'program' | 'fragment' | 'signature';

/** One fenced TypeScript block. */
export interface CodeBlock {
  /** The Markdown file, relative to the repository. */
  file: string;
  /** 1-based line of the block's first code line. */
  line: number;
  kind: BlockKind;
  /** The code, without the fence and without the fence's indentation. */
  code: string;
}

/** The blocks and prelude of one Markdown file. */
export interface MarkdownExamples {
  file: string;
  blocks: CodeBlock[];
  /** The `doc-test prelude` comment's declarations, or '' . */
  prelude: string;
  /** The 1-based line of the prelude's first line (0 when there is none). */
  preludeLine: number;
}

const KINDS: Record<string, BlockKind> = {
  '': 'program',
  fragment: 'fragment',
  signature: 'signature',
};

const FENCE = /^( {0,3}|\s*)(`{3,}|~{3,})\s*(.*)$/;
const PRELUDE = /^\s*<!--\s*doc-test prelude\b/;

/** Parses one Markdown text; throws on a `ts` block of an unknown kind or an unclosed fence. */
export function parseMarkdown(file: string, text: string): MarkdownExamples {
  const lines = text.split('\n');
  const blocks: CodeBlock[] = [];
  let prelude = '';
  let preludeLine = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (PRELUDE.test(line)) {
      const end = lines.findIndex((l, j) => j > i && l.trim() === '-->');
      if (end < 0) throw new Error(`${file}:${i + 1}: the doc-test prelude comment never ends`);
      if (preludeLine !== 0) throw new Error(`${file}:${i + 1}: a second doc-test prelude`);
      prelude = lines.slice(i + 1, end).join('\n');
      preludeLine = i + 2;
      i = end;
      continue;
    }
    const open = FENCE.exec(line);
    if (!open) continue;
    const [, indent = '', fence = '', info = ''] = open;
    const end = lines.findIndex(
      (l, j) => j > i && l.trim().startsWith(fence) && l.trim().replace(/[`~]/g, '') === '',
    );
    if (end < 0) throw new Error(`${file}:${i + 1}: the code block never ends`);
    const [language = '', ...rest] = info.trim().split(/\s+/);
    if (language === 'ts' || language === 'typescript') {
      const kind = KINDS[rest.join(' ')];
      if (kind === undefined) {
        throw new Error(
          `${file}:${i + 1}: unknown block kind \`${info.trim()}\`; use \`ts\` (a complete program), \`ts fragment\` or \`ts signature\``,
        );
      }
      const code = lines
        .slice(i + 1, end)
        .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()))
        .join('\n');
      blocks.push({ file, line: i + 2, kind, code });
    }
    i = end;
  }
  return { file, blocks, prelude, preludeLine };
}

/** README.md and every Markdown file under docs/, relative to `root`. */
export function documentedFiles(root: string): string[] {
  const files = ['README.md'];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.md')) files.push(rel);
    }
  };
  walk('docs');
  return files.sort();
}

/** The examples of every documented file. */
export function readExamples(root: string): MarkdownExamples[] {
  return documentedFiles(root).map((file) =>
    parseMarkdown(file, fs.readFileSync(path.join(root, file), 'utf8')),
  );
}
