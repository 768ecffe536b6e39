import { defineConfig } from 'vitest/config';
import { shared } from './vitest.config.js';

/**
 * The power-loss harness's bounded samples (test/crash/*.test.ts): crash states of walguard's
 * workloads, restores, first opens and faults, replayed and reopened with fresh connections.
 * `npm run test:crash`; CI runs it after `npm test`. The full explorations: `npm run crash`.
 */
export default defineConfig({
  test: {
    ...shared,
    globalSetup: [...shared.globalSetup],
    include: ['test/crash/**/*.test.ts'],
  },
});
