import { defineConfig } from 'vitest/config';
import { shared } from './vitest.config.js';

/**
 * The power-loss harness's bounded samples (test/crash/*.test.ts): crash states of walguard's
 * workloads, restores, first opens and faults, replayed and reopened with fresh connections;
 * and `npm run demo:power-cut` in a small mode (power-cut-demo.test.ts), which runs on the
 * same recorder.
 * `npm run test:crash`; CI runs it after `npm test`. The full explorations: `npm run crash`.
 */
export default defineConfig({
  test: {
    ...shared,
    globalSetup: [...shared.globalSetup],
    include: ['test/crash/**/*.test.ts'],
  },
});
