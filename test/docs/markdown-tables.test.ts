/**
 * The docs' tables render as tables: in GitHub's Markdown every unescaped `|` ends a cell,
 * even inside a code span, so a row with one more `|` than its header is cut in two.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { documentedFiles } from './markdown-blocks.js';

const root = path.resolve(import.meta.dirname, '../..');

/** Rows whose cell count differs from their table's header, as `file:line`. */
function brokenRows(file: string, text: string): string[] {
  const cellCount = (line: string) =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/).length;
  const broken: string[] = [];
  let header: number | undefined;
  let fence: string | undefined;
  text.split('\n').forEach((line, i) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (marker !== undefined && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      return;
    }
    if (fence !== undefined || !line.trimStart().startsWith('|')) {
      header = undefined;
      return;
    }
    if (header === undefined) header = cellCount(line);
    else if (cellCount(line) !== header) broken.push(`${file}:${i + 1}`);
  });
  return broken;
}

describe('the tables of README.md and docs/', () => {
  it('have as many cells in each row as in their header', () => {
    const broken = documentedFiles(root).flatMap((file) =>
      brokenRows(file, fs.readFileSync(path.join(root, file), 'utf8')),
    );
    expect(broken).toEqual([]);
  });

  it('count a `|` in a code span as a cell break, and an escaped one as text', () => {
    const table = '| a | b |\n| - | - |\n| `x|y` | z |\n| `x\\|y` | z |\n';
    expect(brokenRows('t.md', table)).toEqual(['t.md:3']);
  });
});
