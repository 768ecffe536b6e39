/**
 * The engine's limit: the `libsql` package directly (what walguard's writer uses), one
 * transaction, one prepared statement, synchronous=FULL, on the calling thread. Nothing a
 * layer on top of this engine can write faster; walguard's target is half of it.
 */
import Database from 'libsql';
import type { Driver } from './driver.js';
import { type SyncDatabase, singleTransactionDriver } from './single-transaction-driver.js';

export function rawLibsqlDriver(): Driver {
  return singleTransactionDriver('raw-libsql-tx', (file) => new Database(file) as SyncDatabase);
}
