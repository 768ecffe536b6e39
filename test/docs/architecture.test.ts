/**
 * ARCHITECTURE.md stays true as the code changes: every repository path it names exists, and
 * every folder of `src/` has its place in the code map.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '../..');
const text = fs.readFileSync(path.join(root, 'ARCHITECTURE.md'), 'utf8');

/** Paths the page names: in backticks or as link targets, under the repository's folders. */
function namedPaths(markdown: string): string[] {
  const found = new Set<string>();
  const pattern =
    /(?:`|\]\()((?:src|test|bench|docs|demo|scripts)\/[\w./-]*|README\.md|ARCHITECTURE\.md)(?:#[\w-]*)?(?:`|\))/g;
  for (const match of markdown.matchAll(pattern)) found.add(match[1]!.replace(/\/$/, ''));
  return [...found].sort();
}

/**
 * Bare file names in a bullet that starts with a path (`src/durability/checkpointer.ts`,
 * `backups.ts`, …) name files of that path's folder.
 */
function siblingPaths(markdown: string): string[] {
  const found = new Set<string>();
  for (const bullet of markdown.split(/\n(?=- )/)) {
    const first = /^- `((?:src|test)\/[\w/-]+\/)[\w.-]+\.ts`/.exec(bullet);
    if (first === null) continue;
    const head = bullet.split(' — ')[0]!;
    for (const m of head.matchAll(/`([\w.-]+\.ts)`/g)) found.add(`${first[1]}${m[1]}`);
  }
  return [...found].sort();
}

describe('ARCHITECTURE.md', () => {
  it('names only files and folders that exist', () => {
    const named = [...namedPaths(text), ...siblingPaths(text)];
    expect(named.length).toBeGreaterThan(40);
    const missing = named.filter((p) => !fs.existsSync(path.join(root, p)));
    expect(missing).toEqual([]);
  });

  it('places every folder of src/ in the code map', () => {
    const folders = fs
      .readdirSync(path.join(root, 'src'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => `src/${e.name}/`);
    expect(folders.filter((f) => !text.includes(`\`${f}\``))).toEqual([]);
  });

  it('finds a path that does not exist (the check can fail)', () => {
    const page = 'See `src/queue/no-such-file.ts` and\n- `src/queue/writer.ts`, `gone.ts` — x';
    const named = [...namedPaths(page), ...siblingPaths(page)];
    expect(named).toContain('src/queue/no-such-file.ts');
    expect(named).toContain('src/queue/gone.ts');
    expect(named.filter((p) => !fs.existsSync(path.join(root, p))).sort()).toEqual([
      'src/queue/gone.ts',
      'src/queue/no-such-file.ts',
    ]);
  });
});
