/**
 * Recovery at open: what `onCorruption: 'restore'` does when the open sequence finds the
 * database damaged (its pages, its WAL) or gone (quarantined earlier, with no restore after).
 *
 * Strategy: find the newest backup *of this database* that passes its own check (by identity,
 * see `backups.ts`: never another database's backup that happens to share the folder or the
 * name; legacy backups without a manifest are not used automatically), and restore it with
 * `restoreBackup`, which moves whatever damaged files are still at the path to quarantine
 * (never deletes them) and is crash-safe. Then the open sequence tries once more. The key file
 * is never restored over a damaged key file here: key file damage fails the open (`CORRUPT`
 * naming the key file) for an operator to decide.
 *
 * Not guaranteed: writes acknowledged after the backup was taken are not in the restored
 * database; they stay in the quarantined files, and the `recovery` facts (`stats().recovery`,
 * the log, the `walguard:recovery` channel) say when the backup was taken.
 */
import path from 'node:path';
import { WalguardError } from '../errors.js';
import { hasSubscribers, publish } from '../metrics/channels.js';
import type { ResolvedOptions } from '../options.js';
import { type BackupDatabase, newestGoodBackup } from './backups.js';
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
  const source =
    typeof error.details?.source === 'string'
      ? error.details.source
      : error.details?.messages
        ? 'integrity'
        : error.details?.kind
          ? 'header'
          : 'engine';
  publish('corruption', { path, source, message: error.message });
}

/** Puts the newest good backup of `database` in place of the damaged (or missing) files. */
export async function restoreNewestBackup(
  options: ResolvedOptions,
  database: BackupDatabase,
  damage: WalguardError,
): Promise<RecoveryInfo> {
  const log = options.logger.child({ component: 'restore' });
  const source = options.encryption;
  const search = await newestGoodBackup(options.backup.dir, database, source);
  const backup = search.backup;
  if (backup === undefined) {
    const tried =
      search.rejected.length === 0
        ? `there is no backup of ${database.name} in ${options.backup.dir}`
        : `no backup of ${database.name} in ${options.backup.dir} passes its check (${search.rejected
            .slice(0, 3)
            .map((r) => `${path.basename(r.path)}: ${r.reason}`)
            .join('; ')})`;
    const legacy =
      search.legacy.length === 0
        ? ''
        : `; ${search.legacy.length} older backup(s) without a manifest (${path.basename(search.legacy[0]!)}…) were not considered, since their database cannot be told: restore one by hand (walguard restore) if it is this database's`;
    throw new WalguardError(
      'CORRUPT',
      `${damage.message} — and ${tried}${legacy}, so nothing was restored`,
      { cause: damage, details: damage.details },
    );
  }
  const result = await restoreBackup(database.path, backup.path, {
    source,
    lockHeld: true,
    reason: damage.message,
  });
  const recovery: RecoveryInfo = {
    reason: damage.message,
    restoredFrom: result.restoredFrom,
    backupTakenAt: backup.takenAt.toISOString(),
    quarantineDir: result.quarantineDir ?? (damage.details?.quarantineDir as string | undefined),
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
