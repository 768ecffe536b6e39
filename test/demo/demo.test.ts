import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('npm run demo', () => {
  it('writes plain progress lines, not carriage-return redraws, when stderr is not a terminal', async () => {
    const dir = tempDir();
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'demo/demo.ts',
        '--seconds',
        '4.5',
        '--sessions',
        '2',
        '--path',
        path.join(dir, 'demo.db'),
      ],
      { cwd: root, env: { ...process.env, WALGUARD_LOG_LEVEL: 'warn' } },
    );
    expect(stderr).not.toContain('\r');
    const progress = stderr.split('\n').filter((l) => / messages .* commits /.test(l));
    // One line every 2 s, and the final "closing…" one.
    expect(progress.length).toBeGreaterThanOrEqual(3);
    for (const line of progress) expect(line.length).toBeLessThan(200);
    expect(progress.at(-1)).toContain('closing…');
    expect(stdout).toContain('closed cleanly');
  });
});
