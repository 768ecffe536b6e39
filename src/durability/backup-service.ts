/**
 * Backups of an open database: on demand, on a schedule, one at a time.
 *
 * Strategy: each backup is `takeBackup` (an online `VACUUM INTO` copy in a child process,
 * verified, renamed into place, pruned by retention; see `backups.ts`). Backups never
 * overlap: a call made while one runs waits for it, then takes its own, so the copy a caller
 * gets always began after its call. A scheduled backup that fails is reported through
 * `onError` and the schedule goes on.
 */
import type { Logger } from 'pino';
import { hasSubscribers, publish } from '../metrics/channels.js';
import { type BackupResult, backupDatabaseOf, takeBackup } from './backups.js';

/** What the service needs to know. */
export interface BackupServiceConfig {
  /** The live database. */
  path: string;
  /** The key in force, for an encrypted database. */
  encryptionKey: string | undefined;
  /** Folder and retention. */
  backup: { dir: string; keepLast: number; keepDailyDays: number; intervalMs: number };
  /** The component logger. */
  logger: Logger;
  /** Called after each backup was written and verified. */
  onBackup(result: BackupResult): void;
  /** Called when a scheduled backup failed. */
  onError(error: Error): void;
}

export class BackupService {
  readonly #config: BackupServiceConfig;
  /** The backup in progress, if any. Guards: one backup at a time. */
  #running: Promise<BackupResult> | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Backups written since open. */
  count = 0;
  /** The last backup written since open. */
  last: BackupResult | undefined;

  constructor(config: BackupServiceConfig) {
    this.#config = config;
    const { intervalMs } = config.backup;
    if (intervalMs > 0) {
      this.#timer = setInterval(() => {
        this.run().catch((error: Error) => config.onError(error));
      }, intervalMs);
      this.#timer.unref();
    }
  }

  /** Takes a backup once any running one has finished. */
  run(): Promise<BackupResult> {
    const previous = this.#running;
    const run = (async () => {
      await previous?.catch(() => {});
      const { path, encryptionKey, backup, logger } = this.#config;
      const result = await takeBackup(path, encryptionKey, {
        dir: backup.dir,
        // Read at each backup: the identity file is the one truth (see database-identity.ts).
        database: await backupDatabaseOf(path),
        keepLast: backup.keepLast,
        keepDailyDays: backup.keepDailyDays,
      });
      this.count++;
      this.last = result;
      logger.info(
        {
          path: result.path,
          bytes: result.bytes,
          durationMs: result.durationMs,
          pruned: result.pruned.length,
        },
        'backup written and verified',
      );
      if (hasSubscribers('backup')) {
        publish('backup', {
          path,
          backupPath: result.path,
          bytes: result.bytes,
          durationMs: result.durationMs,
          pruned: result.pruned.length,
        });
      }
      this.#config.onBackup(result);
      return result;
    })();
    this.#running = run;
    return run;
  }

  /** Stops the schedule and waits for a running backup to end (its failure is not rethrown). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.catch(() => {});
  }
}
