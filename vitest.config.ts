import { defineConfig } from 'vitest/config';

/** What both lanes share (this one, `npm test`, and vitest.crash.config.ts). */
export const shared = {
  // A private TMPDIR per run, removed at the end; what a test leaves there fails the run.
  // Also stops the throwaway PostgreSQL cluster the PostgreSQL tests start (test/pg/cluster.ts).
  globalSetup: ['test/temp-folders.ts', 'test/pg/global-setup.ts'],
  testTimeout: 60_000,
  hookTimeout: 60_000,
  pool: 'forks',
  // Two cores: durability tests spawn child processes and worker threads of their own.
  maxWorkers: 2,
} as const;

export default defineConfig({
  test: {
    ...shared,
    globalSetup: [...shared.globalSetup],
    include: ['test/**/*.test.ts'],
    // The power-loss harness's samples run in their own lane, `npm run test:crash`
    // (vitest.crash.config.ts), which CI runs after `npm test`.
    exclude: ['test/crash/**', '**/node_modules/**'],
  },
});
