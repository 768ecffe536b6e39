/**
 * Builds a driver by name. Each driver's module is imported only when asked for, so that a
 * trial process loads only its own peer's code (peak RSS compares peers, not the suite).
 */
import type { DriverName } from '../trial-types.js';
import type { Driver } from './driver.js';

export async function loadDriver(name: DriverName): Promise<Driver> {
  switch (name) {
    case 'walguard-full':
    case 'walguard-deferred': {
      const { walguardDriver } = await import('./walguard-driver.js');
      return walguardDriver(name === 'walguard-full' ? 'full' : 'deferred');
    }
    case 'naive-client-full':
    case 'naive-client-normal': {
      const { naiveClientDriver } = await import('./naive-client-driver.js');
      return naiveClientDriver(name === 'naive-client-full' ? 'FULL' : 'NORMAL');
    }
    case 'client-batch': {
      const { clientBatchDriver } = await import('./client-batch-driver.js');
      return clientBatchDriver();
    }
    case 'raw-libsql-tx': {
      const { rawLibsqlDriver } = await import('./raw-libsql-driver.js');
      return rawLibsqlDriver();
    }
    case 'better-sqlite3-tx': {
      const { betterSqlite3Driver } = await import('./better-sqlite3-driver.js');
      return betterSqlite3Driver();
    }
  }
}
