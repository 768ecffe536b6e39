/**
 * Every TypeScript example of README.md and docs/ works as written: a ```` ```ts ```` block
 * type-checks against the built package and runs to the end in a fresh folder; a
 * ```` ```ts fragment ```` type-checks (see `markdown-blocks.ts` for the kinds and preludes,
 * `doc-app.ts` for how they compile and run).
 */
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../cli/cli-harness.js';
import { tempDir } from '../helpers.js';
import { type CompiledBlock, compileExamples, type DocApp, runProgram } from './doc-app.js';
import { type MarkdownExamples, parseMarkdown, readExamples } from './markdown-blocks.js';

const root = path.resolve(import.meta.dirname, '../..');

let examples: MarkdownExamples[] = [];
let readError: unknown;
try {
  examples = readExamples(root);
} catch (error) {
  readError = error;
}

let work: string;
let app: DocApp;
const compiledOf = (file: string, line: number): CompiledBlock => {
  const found = app.blocks.find((c) => c.block.file === file && c.block.line === line);
  if (found === undefined) throw new Error(`${file}:${line} was not compiled`);
  return found;
};

describe('the examples of README.md and docs/', () => {
  beforeAll(async () => {
    if (readError !== undefined) return;
    await ensureBuilt();
    work = tempDir('walguard-docs-');
    app = compileExamples(root, examples, work);
  }, 180_000);

  it('are all of a known kind, in documents whose preludes type-check', () => {
    expect(readError).toBeUndefined();
    expect(app.preludeErrors).toEqual([]);
    expect(examples.flatMap((e) => e.blocks).length).toBeGreaterThan(0);
  });

  for (const doc of examples) {
    for (const block of doc.blocks) {
      if (block.kind === 'program') {
        it.concurrent(`${block.file}:${block.line} compiles and runs to the end`, async () => {
          const compiled = compiledOf(block.file, block.line);
          expect(compiled.errors).toEqual([]);
          const cwd = path.join(work, 'run', path.basename(compiled.output, '.js'));
          const run = await runProgram(compiled.output, cwd);
          expect(
            { code: run.code, signal: run.signal },
            `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`,
          ).toEqual({ code: 0, signal: null });
        });
      } else if (block.kind === 'fragment') {
        it(`${block.file}:${block.line} (a fragment) type-checks`, () => {
          expect(compiledOf(block.file, block.line).errors).toEqual([]);
        });
      }
    }
  }
});

describe('markdown blocks', () => {
  it('tells programs, fragments and signatures apart, with the line of their first code line', () => {
    const doc = [
      '# t',
      '```ts',
      "import 'walguard';",
      '```',
      '- item',
      '  ```ts fragment',
      '  await db.close();',
      '  ```',
      '```ts signature',
      'close(): Promise<void>',
      '```',
      '```sh',
      'npm test',
      '```',
    ].join('\n');
    const { blocks } = parseMarkdown('t.md', doc);
    expect(blocks).toEqual([
      { file: 't.md', line: 3, kind: 'program', code: "import 'walguard';" },
      { file: 't.md', line: 7, kind: 'fragment', code: 'await db.close();' },
      { file: 't.md', line: 10, kind: 'signature', code: 'close(): Promise<void>' },
    ]);
  });

  it('refuses a ts block of an unknown kind, so that none escapes the doc-test by a typo', () => {
    expect(() => parseMarkdown('t.md', '```ts fragmnet\nx\n```\n')).toThrow(
      't.md:1: unknown block kind `ts fragmnet`',
    );
  });

  it('reads a document prelude from its HTML comment', () => {
    const parsed = parseMarkdown(
      't.md',
      'intro\n<!-- doc-test prelude\ndeclare const notes: number;\n-->\n',
    );
    expect(parsed.prelude).toBe('declare const notes: number;');
    expect(parsed.preludeLine).toBe(3);
  });
});
