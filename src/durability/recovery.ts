/**
 * Recovery at open: what `onCorruption: 'restore'` does when the open sequence finds the
 * database damaged.
 *
 * Strategy: find the newest backup of this database that passes its own check, move the
 * damaged files to quarantine (never delete them), put the backup in place, and let the open
 * sequence try once more. The key file is never restored over a damaged key file here: key
 * file damage fails the open (`CORRUPT` naming the key file) for an operator to decide.
 *
 * Not guaranteed: writes acknowledged after the backup was taken are not in the restored
 * database; they stay in the quarantined files, and the `recovery` facts (`stats().recovery`,
 * the log, the `walguard:recovery` channel) say when the backup was taken.
 */
import { WalguardError } from '../errors.js';
import { hasSubscribers, publish } from '../metrics/channels.js';
import type { ResolvedOptions } from '../options.js';
import { backupNameFor, newestGoodBackup } from './backups.js';
import { restoreBackup } from './restore.js';

/** What an open that restored a backup did. */
export interface RecoveryInfo {
  /** Why: the damage found. */
  reason: string;
  /** The backup put in place. */
  restoredFrom: string;
  /** When that backup was taken (ISO 8601): later writes are not in the live database. */
  backupTakenAt: string;
  /** Where the damaged files were moved. */
  quarantineDir: string | undefined;
}

/** Publishes a `CORRUPT` open failure on the `walguard:corruption` channel. */
export function publishCorruption(path: string, error: WalguardError): void {
  if (!hasSubscribers('corruption')) return;
  const source = error.details?.messages ? 'integrity' : error.details?.kind ? 'header' : 'engine';
  publish('corruption', { path, source, message: error.message });
}

/** Quarantines the damaged database and puts the newest good backup in its place. */
export async function restoreNewestBackup(
  options: ResolvedOptions,
  damage: WalguardError,
): Promise<RecoveryInfo> {
  const log = options.logger.child({ component: 'restore' });
  const source = options.encryption;
  const backup = await newestGoodBackup(options.backup.dir, backupNameFor(options.path), source);
  if (backup === undefined) {
    throw new WalguardError(
      'CORRUPT',
      `${damage.message} — and no backup in ${options.backup.dir} passes its check, so nothing was moved or restored`,
      { cause: damage, details: damage.details },
    );
  }
  const result = await restoreBackup(options.path, backup.path, {
    source,
    lockHeld: true,
    reason: damage.message,
  });
  const recovery: RecoveryInfo = {
    reason: damage.message,
    restoredFrom: result.restoredFrom,
    backupTakenAt: backup.takenAt.toISOString(),
    quarantineDir: result.quarantineDir,
  };
  log.warn(
    { step: 'restore', ...recovery },
    `the database was damaged and has been replaced by the backup taken at ${recovery.backupTakenAt}: writes made after that time are lost from the live database (the damaged files are kept in ${recovery.quarantineDir})`,
  );
  if (hasSubscribers('recovery')) {
    const { reason: _reason, ...facts } = recovery;
    publish('recovery', { path: options.path, ...facts });
  }
  return recovery;
}
