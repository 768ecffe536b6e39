import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/exit-codes.js';
import { GLOBAL_OPTIONS } from '../../src/cli/help-text.js';
import { COMMANDS } from '../../src/cli/run-cli.js';

const doc = fs.readFileSync(path.join(import.meta.dirname, '../../docs/cli.md'), 'utf8');

describe('docs/cli.md', () => {
  it('has a section for every command, naming each of its options', () => {
    for (const command of COMMANDS) {
      const start = doc.indexOf(`\n## ${command.name}\n`);
      expect(start, command.name).toBeGreaterThan(0);
      const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
      for (const option of Object.keys(command.options)) expect(section).toContain(`--${option}`);
    }
  });

  it('lists every exit code and every global option', () => {
    for (const code of Object.values(EXIT))
      expect(doc).toMatch(new RegExp(`^\\|\\s*${code}\\s*\\|`, 'm'));
    for (const option of Object.keys(GLOBAL_OPTIONS)) expect(doc).toContain(`--${option}`);
  });
});
