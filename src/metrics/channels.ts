/**
 * walguard's events on `node:diagnostics_channel`, for APM tools and metrics exporters that
 * subscribe without a reference to the `Walguard` object (and before it is opened: the
 * open-time integrity check, corruption and recovery events happen inside `openDatabase`).
 *
 * Each channel carries one plain object. Every message names the database (`path`, absolute)
 * so a subscriber can tell several databases apart. Messages never carry a key, a passphrase,
 * SQL parameters or row data: only counts, durations, codes and file paths.
 *
 * Cost: `publish` checks `hasSubscribers` first, so with no subscriber a call is one property
 * read and builds nothing; callers on the hot path should still build the message only when
 * `hasSubscribers(name)` says someone listens.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

/** The channel names, stable: subscribers depend on them. */
export const CHANNELS = Object.freeze({
  /** A database finished opening. */
  open: 'walguard:open',
  /** A batch committed, or failed as a whole. */
  commit: 'walguard:commit',
  /** A checkpoint ran. */
  checkpoint: 'walguard:checkpoint',
  /** A backup was written and verified. */
  backup: 'walguard:backup',
  /** An integrity check ran (at open, or through `check()`). */
  integrity: 'walguard:integrity',
  /** Damage was found (the open failed with `CORRUPT`, or a check failed). */
  corruption: 'walguard:corruption',
  /** A damaged database was quarantined and replaced by a backup. */
  recovery: 'walguard:recovery',
  /** A deferred unit, a batch or a scheduled backup failed. */
  error: 'walguard:error',
  /** A database finished closing. */
  close: 'walguard:close',
});

/** A channel's key in `CHANNELS`. */
export type ChannelName = keyof typeof CHANNELS;

/** The message of each channel. */
export interface ChannelMessages {
  open: {
    /** The database file. */
    path: string;
    /** How long the open took, in ms (migrations included). */
    durationMs: number;
    /** Whether the database is encrypted. */
    encrypted: boolean;
  };
  commit: {
    path: string;
    /** Units in the batch. */
    units: number;
    /** Of those, critical units. */
    critical: number;
    /** Units that succeeded. */
    succeeded: number;
    /** Whether the COMMIT was made with the configured `synchronous` (false: deferred-only). */
    durable: boolean;
    /** BEGIN to end of COMMIT, in ms. */
    commitMs: number;
    /** The error code when the whole batch failed. */
    errorCode?: string | undefined;
  };
  checkpoint: {
    path: string;
    mode: 'PASSIVE' | 'FULL' | 'RESTART' | 'TRUNCATE';
    /** True when a reader kept it from finishing. */
    busy: boolean;
    logFrames: number;
    checkpointedFrames: number;
    durationMs: number;
    reason: string;
  };
  backup: {
    path: string;
    /** The backup file written. */
    backupPath: string;
    bytes: number;
    durationMs: number;
    /** Backups removed by retention. */
    pruned: number;
  };
  integrity: {
    path: string;
    level: 'quick' | 'full';
    ok: boolean;
    durationMs: number;
    /** `open` (the check at open) or `check` (a `check()` call). */
    trigger: 'open' | 'check';
    /** The check's first messages when not ok (at most 5; page numbers, never row data). */
    messages?: string[] | undefined;
  };
  corruption: {
    path: string;
    /** What found it: `header`, `integrity`, `decrypt`, `engine`. */
    source: string;
    /** The error message (file paths and SQLite's words, never secrets). */
    message: string;
  };
  recovery: {
    path: string;
    /** The backup put in place. */
    restoredFrom: string;
    /** When that backup was taken, ISO 8601. */
    backupTakenAt: string;
    /** Where the damaged files were moved. */
    quarantineDir: string | undefined;
  };
  error: {
    path: string;
    /** `deferred`, `batch` or `backup`. */
    source: string;
    /** The walguard or SQLite code. */
    code: string;
    message: string;
  };
  close: {
    path: string;
    durationMs: number;
  };
}

const channels = Object.fromEntries(
  Object.entries(CHANNELS).map(([key, name]) => [key, diagnosticsChannel.channel(name)]),
) as Record<ChannelName, diagnosticsChannel.Channel>;

/** True when someone listens on `name`: build a costly message only then. */
export function hasSubscribers(name: ChannelName): boolean {
  return channels[name].hasSubscribers;
}

/** Publishes `message` on the channel `name`; does nothing when no one listens. */
export function publish<N extends ChannelName>(name: N, message: ChannelMessages[N]): void {
  const channel = channels[name];
  if (channel.hasSubscribers) channel.publish(message);
}

/** Subscribes to the channel `name`; returns the function that unsubscribes. */
export function subscribe<N extends ChannelName>(
  name: N,
  listener: (message: ChannelMessages[N]) => void,
): () => void {
  const wrapped = (message: unknown) => listener(message as ChannelMessages[N]);
  diagnosticsChannel.subscribe(CHANNELS[name], wrapped);
  return () => {
    diagnosticsChannel.unsubscribe(CHANNELS[name], wrapped);
  };
}
