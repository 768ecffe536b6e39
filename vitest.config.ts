import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A private TMPDIR per run, removed at the end; what a test leaves there fails the run.
    // Also stops the throwaway PostgreSQL cluster the PostgreSQL tests start (test/pg/cluster.ts).
    globalSetup: ['test/temp-folders.ts', 'test/pg/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: durability tests spawn child processes and worker threads of their own.
    maxWorkers: 2,
  },
});
