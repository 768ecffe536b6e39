import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

/** Made at load time (as in a `beforeAll`): kept for every test of the file. */
const fileFolder = tempDir();
let testFolder = '';

describe('tempDir()', () => {
  it('gives a fresh folder under the run’s TMPDIR', () => {
    testFolder = tempDir();
    expect(fs.statSync(testFolder).isDirectory()).toBe(true);
    fs.writeFileSync(`${testFolder}/file`, 'x');
    expect(testFolder.startsWith(process.env.TMPDIR ?? '')).toBe(true);
  });

  it('removes a folder made in a test, with its contents, once that test has finished', () => {
    expect(testFolder).not.toBe('');
    expect(fs.existsSync(testFolder)).toBe(false);
  });

  it('keeps a folder made outside a test until the file has finished', () => {
    expect(fs.existsSync(fileFolder)).toBe(true);
  });
});
