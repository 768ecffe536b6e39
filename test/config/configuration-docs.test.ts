import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configFields } from '../../src/config/config-schema.js';
import { CHANNELS } from '../../src/metrics/channels.js';

const doc = fs.readFileSync(path.join(import.meta.dirname, '../../docs/configuration.md'), 'utf8');

describe('docs/configuration.md', () => {
  it('documents every key of the schema with its environment variable', () => {
    for (const field of configFields) {
      const row = doc
        .split('\n')
        .find((line) => new RegExp(`^\\|\\s*\`${field.key}\`\\s*\\|`).test(line));
      expect(row, field.key).toBeDefined();
      if (field.env === undefined) expect(row).toMatch(/\|\s*—\s*\|/);
      else expect(row).toContain(`\`${field.env}\``);
    }
  });

  it('documents every diagnostics channel', () => {
    for (const name of Object.values(CHANNELS)) expect(doc).toContain(`\`${name}\``);
  });
});
