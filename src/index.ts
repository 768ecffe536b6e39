/**
 * walguard: a durable repository layer over embedded libSQL.
 * This file only re-exports the public surface.
 */

export { applyConfigFile, type OptionsWithConfig } from './config/apply-config-file.js';
export {
  type ConfigOptions,
  type ConfigProblem,
  type LoadedConfig,
  loadConfig,
  parseConfig,
  readConfig,
} from './config/load-config.js';
export type { BackupFile, BackupResult } from './durability/backups.js';
export { type RestoreResult, restore } from './durability/restore.js';
export {
  isWalguardError,
  PostgresError,
  SqliteError,
  WalguardError,
  type WalguardErrorCode,
  type WalguardErrorDetails,
} from './errors.js';
export type { BackupOptions, CheckpointOptions, ReaderOptions } from './options.js';
export {
  defaultOptions,
  defaultReaderThreads,
  type EncryptionOptions,
  type SynchronousLevel,
  type WalguardOptions,
} from './options.js';
export type { CheckpointMode } from './queue/protocol.js';
export type { LatencySummary } from './queue/queue-stats.js';
export { READER_THREAD_HINT, readOnReaderThread } from './repo/read-router.js';
export * from './repo/stores.js';
export { WalguardDialect } from './repo/walguard-dialect.js';
export type { ReadStats } from './stats.js';
export {
  type CheckLevel,
  type CheckpointEvent,
  type CheckResult,
  type CommitEvent,
  type OutputOf,
  openDatabase,
  type RecoveryInfo,
  Walguard,
  type WalguardEvents,
  type WalguardStats,
  type Writable,
  type WriteResult,
  type WriteResults,
} from './walguard.js';
