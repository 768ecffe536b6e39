/**
 * vitest global setup: names the folder of this run's shared PostgreSQL cluster (started
 * lazily by the first test file that needs it, see `cluster.ts`) and stops and removes it
 * when the run ends. Without PostgreSQL installed it prints one line saying how to get it;
 * the PostgreSQL tests are then skipped.
 */
import os from 'node:os';
import path from 'node:path';
import { INSTALL_HINT, postgresBinDir, stopSharedCluster } from './cluster.js';

export default function setup(): () => void {
  const dir = path.join(os.tmpdir(), `walguard-pg-run-${process.pid}`);
  process.env.WALGUARD_TEST_PG_DIR = dir;
  if (postgresBinDir() === undefined) console.warn(INSTALL_HINT);
  return () => stopSharedCluster(dir);
}
