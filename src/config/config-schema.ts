/**
 * The schema of walguard's configuration file: every key it accepts, what each value must be,
 * the environment variable that overrides it, and the one sentence that says so in an error.
 *
 * One table drives the file's validation, the environment overrides and the documentation
 * (docs/configuration.md lists the same rows), so the three cannot drift apart. The keys are
 * `WalguardOptions`' own names (nested ones dotted: `backup.keepLast`), and the bounds are
 * those of `resolveOptions` in `src/options.ts`, with two additions that the file can check
 * and code cannot: timer values are capped at 2147483647 ms (Node's timers fire at once,
 * with only a warning, beyond that), and secrets are refused in the file (it names where the
 * secret is instead: an environment variable or a file).
 */

/** What a value must be. */
export type FieldKind =
  /** An integer in [min, max]; `infinity` also accepts YAML's `.inf` (and `Infinity` in the environment). */
  | { type: 'integer'; min: number; max?: number; infinity?: boolean }
  /** One of a fixed list of strings (`caseInsensitive`: any case is accepted and normalised). */
  | { type: 'enum'; values: readonly string[]; caseInsensitive?: boolean }
  /** `true` or `false`. */
  | { type: 'boolean' }
  /** A non-empty file path, resolved against the configuration file's folder. */
  | { type: 'path' }
  /** The name of an environment variable. */
  | { type: 'env-name' };

/** One key of the configuration file. */
export interface ConfigField {
  /** The key, dotted for nested ones: `backup.keepLast`. */
  readonly key: string;
  /** What its value must be. */
  readonly kind: FieldKind;
  /** The environment variable that overrides it, or undefined when none does. */
  readonly env: string | undefined;
  /** Its meaning, unit and default, in one line (for docs and `--help`). */
  readonly doc: string;
}

/** Longest delay Node's timers accept, in ms (2^31 - 1, about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

/** The levels `logLevel` accepts (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const int = (min: number, max?: number): FieldKind =>
  max === undefined ? { type: 'integer', min } : { type: 'integer', min, max };
const timer = (min: number): FieldKind => ({ type: 'integer', min, max: MAX_TIMER_MS });

/** Every key of the configuration file, in documentation order. */
export const configFields: readonly ConfigField[] = Object.freeze([
  {
    key: 'path',
    kind: { type: 'path' },
    env: 'WALGUARD_PATH',
    doc: 'Database file. Relative paths are resolved against the config file’s folder.',
  },
  {
    key: 'synchronous',
    kind: { type: 'enum', values: ['NORMAL', 'FULL', 'EXTRA'], caseInsensitive: true },
    env: 'WALGUARD_SYNCHRONOUS',
    doc: '`synchronous` level of critical commits. Default FULL.',
  },
  {
    key: 'busyTimeoutMs',
    kind: timer(0),
    env: 'WALGUARD_BUSY_TIMEOUT_MS',
    doc: 'Wait for a lock held by another connection, in ms. Default 5000.',
  },
  {
    key: 'cacheSizeKiB',
    kind: int(0),
    env: 'WALGUARD_CACHE_SIZE_KIB',
    doc: 'Page cache per connection, in KiB. Default 16384.',
  },
  {
    key: 'walAutocheckpointPages',
    kind: int(0),
    env: 'WALGUARD_WAL_AUTOCHECKPOINT_PAGES',
    doc: 'SQLite’s autocheckpoint threshold, in pages (0 disables). Default 1000.',
  },
  {
    key: 'maxBatchUnits',
    kind: int(1),
    env: 'WALGUARD_MAX_BATCH_UNITS',
    doc: 'Most units in one batch (one fsync). Default 1024.',
  },
  {
    key: 'maxBatchBytes',
    kind: int(1024),
    env: 'WALGUARD_MAX_BATCH_BYTES',
    doc: 'Most bytes of SQL and parameters in one batch. Default 4194304 (4 MiB).',
  },
  {
    key: 'maxPendingUnits',
    kind: int(1),
    env: 'WALGUARD_MAX_PENDING_UNITS',
    doc: 'Most units waiting in the queue; past it callers wait. Default 10000.',
  },
  {
    key: 'maxPendingBytes',
    kind: int(1024),
    env: 'WALGUARD_MAX_PENDING_BYTES',
    doc: 'Most bytes waiting in the queue; past it callers wait. Default 67108864 (64 MiB).',
  },
  {
    key: 'maxWaitingCallers',
    kind: int(0),
    env: 'WALGUARD_MAX_WAITING_CALLERS',
    doc: 'Most callers waiting for room; more get QUEUE_FULL at once. Default 10000.',
  },
  {
    key: 'queueTimeoutMs',
    kind: { type: 'integer', min: 0, max: MAX_TIMER_MS, infinity: true },
    env: 'WALGUARD_QUEUE_TIMEOUT_MS',
    doc: 'Longest wait for room before QUEUE_FULL, in ms, or `.inf`. Default 30000.',
  },
  {
    key: 'lingerMs',
    kind: timer(0),
    env: 'WALGUARD_LINGER_MS',
    doc: 'Extra wait before a batch starts, in ms. Default 0.',
  },
  {
    key: 'deferredFlushMs',
    kind: timer(0),
    env: 'WALGUARD_DEFERRED_FLUSH_MS',
    doc: 'Longest delay before a deferred unit is applied, in ms. Default 100.',
  },
  {
    key: 'transactionTimeoutMs',
    kind: timer(1),
    env: 'WALGUARD_TRANSACTION_TIMEOUT_MS',
    doc: 'Longest life of an interactive transaction, in ms. Default 5000.',
  },
  {
    key: 'migrationTimeoutMs',
    kind: timer(1),
    env: 'WALGUARD_MIGRATION_TIMEOUT_MS',
    doc: "Longest life of one migration's transaction, in ms. Default 600000.",
  },
  {
    key: 'integrityCheck',
    kind: { type: 'enum', values: ['quick', 'full', 'off'] },
    env: 'WALGUARD_INTEGRITY_CHECK',
    doc: 'Integrity check at open. Default quick.',
  },
  {
    key: 'onCorruption',
    kind: { type: 'enum', values: ['fail', 'restore'] },
    env: 'WALGUARD_ON_CORRUPTION',
    doc: 'What a damaged database does at open. Default fail.',
  },
  {
    key: 'handleSignals',
    kind: { type: 'boolean' },
    env: 'WALGUARD_HANDLE_SIGNALS',
    doc: 'Close on SIGINT, SIGTERM, SIGHUP and beforeExit. Default true.',
  },
  {
    key: 'shutdownTimeoutMs',
    kind: timer(1),
    env: 'WALGUARD_SHUTDOWN_TIMEOUT_MS',
    doc: 'Longest signal-triggered close before the process exits anyway, in ms. Default 10000.',
  },
  {
    key: 'lockWaitMs',
    kind: timer(0),
    env: 'WALGUARD_LOCK_WAIT_MS',
    doc: 'Wait for another process to release the database, in ms. Default 0.',
  },
  {
    key: 'logLevel',
    kind: { type: 'enum', values: LOG_LEVELS },
    env: 'WALGUARD_LOG_LEVEL',
    doc: 'Level of walguard’s own pino logger (ignored when the app passes a logger). Default warn.',
  },
  {
    key: 'backup.dir',
    kind: { type: 'path' },
    env: 'WALGUARD_BACKUP_DIR',
    doc: 'Backup folder. Default `backups/` beside the database.',
  },
  {
    key: 'backup.keepLast',
    kind: int(1),
    env: 'WALGUARD_BACKUP_KEEP_LAST',
    doc: 'Backups always kept, newest first. Default 7.',
  },
  {
    key: 'backup.keepDailyDays',
    kind: int(0),
    env: 'WALGUARD_BACKUP_KEEP_DAILY_DAYS',
    doc: 'Beyond those, the newest backup of each UTC day for this many days. Default 7.',
  },
  {
    key: 'backup.onOpen',
    kind: { type: 'boolean' },
    env: 'WALGUARD_BACKUP_ON_OPEN',
    doc: 'Take a backup right after each open. Default false.',
  },
  {
    key: 'backup.beforeMigrations',
    kind: { type: 'boolean' },
    env: 'WALGUARD_BACKUP_BEFORE_MIGRATIONS',
    doc: 'Take a backup before pending migrations run. Default true.',
  },
  {
    key: 'backup.intervalMs',
    kind: timer(0),
    env: 'WALGUARD_BACKUP_INTERVAL_MS',
    doc: 'Take a backup every this many ms while open (0 = never). Default 0.',
  },
  {
    key: 'checkpoint.idleMs',
    kind: timer(0),
    env: 'WALGUARD_CHECKPOINT_IDLE_MS',
    doc: 'PASSIVE checkpoint after this much queue idleness, in ms (0 = never). Default 2000.',
  },
  {
    key: 'checkpoint.walSizeLimitBytes',
    kind: int(65536),
    env: 'WALGUARD_CHECKPOINT_WAL_SIZE_LIMIT_BYTES',
    doc: 'TRUNCATE checkpoint past this WAL size, in bytes. Default 67108864 (64 MiB).',
  },
  {
    key: 'readers.threads',
    kind: int(1, 64),
    env: 'WALGUARD_READERS_THREADS',
    doc: 'Reader threads (from 1 to 64). Default: the cores minus one, from 1 to 4.',
  },
  {
    key: 'readers.mainThreadMaxUs',
    kind: { type: 'integer', min: 0, infinity: true },
    env: 'WALGUARD_READERS_MAIN_THREAD_MAX_US',
    doc: 'Reads measured at most this many µs run on the main thread, or `.inf` (all). Default 250.',
  },
  {
    key: 'readers.turnBudgetUs',
    kind: { type: 'integer', min: 0, infinity: true },
    env: 'WALGUARD_READERS_TURN_BUDGET_US',
    doc: 'Main-thread reads per event-loop turn, in µs, or `.inf` (never yield). Default 1000.',
  },
  {
    key: 'readers.nice',
    kind: int(0, 19),
    env: 'WALGUARD_READERS_NICE',
    doc: 'CPU niceness of the reader threads (from 0 to 19; Linux). Default 10.',
  },
  {
    key: 'encryption.passphraseEnv',
    kind: { type: 'env-name' },
    env: undefined,
    doc: 'Name of the environment variable that holds the passphrase.',
  },
  {
    key: 'encryption.passphraseFile',
    kind: { type: 'path' },
    env: 'WALGUARD_PASSPHRASE_FILE',
    doc: 'File whose content is the passphrase (one trailing newline is ignored).',
  },
  {
    key: 'encryption.keyEnv',
    kind: { type: 'env-name' },
    env: undefined,
    doc: 'Name of the environment variable that holds a raw libSQL key.',
  },
  {
    key: 'encryption.keyFile',
    kind: { type: 'path' },
    env: 'WALGUARD_KEY_FILE',
    doc: 'File whose content is a raw libSQL key (one trailing newline is ignored).',
  },
]);

/** The fields by key. */
export const fieldsByKey: ReadonlyMap<string, ConfigField> = new Map(
  configFields.map((f) => [f.key, f]),
);

/** The keys that hold a section (an object of nested keys). */
export const sections: readonly string[] = Object.freeze([
  'backup',
  'checkpoint',
  'readers',
  'encryption',
]);

/** Environment variables that carry a secret value itself (never shown anywhere). */
export const SECRET_ENV = Object.freeze({
  passphrase: 'WALGUARD_PASSPHRASE',
  key: 'WALGUARD_KEY',
});

/** Keys that are not allowed in a file, with the reason said in the error. */
export const refusedKeys: ReadonlyMap<string, string> = new Map([
  [
    'encryption.passphrase',
    'a passphrase must not be written in a configuration file: name where it is instead, with `encryption.passphraseEnv` or `encryption.passphraseFile`',
  ],
  [
    'encryption.key',
    'a key must not be written in a configuration file: name where it is instead, with `encryption.keyEnv` or `encryption.keyFile`',
  ],
  [
    'logger',
    'a logger is an object made in code: pass `logger` to openDatabase, or set `logLevel`',
  ],
  ['migrations', 'migrations are code: pass `migrations` to openDatabase'],
  ['config', 'a configuration file cannot include another one'],
]);

/** The sentence saying what a value of `kind` must be. */
export function expectation(kind: FieldKind): string {
  switch (kind.type) {
    case 'integer': {
      const range = kind.max === undefined ? `>= ${kind.min}` : `from ${kind.min} to ${kind.max}`;
      return `an integer ${range}${kind.infinity ? ', or .inf' : ''}`;
    }
    case 'enum':
      return `one of ${kind.values.map((v) => `'${v}'`).join(', ')}`;
    case 'boolean':
      return 'a boolean (true or false)';
    case 'path':
      return 'a non-empty file path';
    case 'env-name':
      return 'the name of an environment variable (letters, digits and _, not starting with a digit)';
  }
}

/** The checked value, or `undefined` when `value` is not valid for `kind`. */
export function checkValue(kind: FieldKind, value: unknown): unknown {
  switch (kind.type) {
    case 'integer':
      if (kind.infinity && value === Number.POSITIVE_INFINITY) return value;
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) return undefined;
      if (value < kind.min || (kind.max !== undefined && value > kind.max)) return undefined;
      return value;
    case 'enum': {
      if (typeof value !== 'string') return undefined;
      const found = kind.values.find((v) =>
        kind.caseInsensitive ? v.toLowerCase() === value.toLowerCase() : v === value,
      );
      return found;
    }
    case 'boolean':
      return typeof value === 'boolean' ? value : undefined;
    case 'path':
      return typeof value === 'string' && value.trim() !== '' && value !== ':memory:'
        ? value
        : undefined;
    case 'env-name':
      return typeof value === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(value)
        ? value
        : undefined;
  }
}

/**
 * Parses an environment variable's text as a value of `kind` (integers, `Infinity`,
 * booleans as true/false/1/0/yes/no/on/off); returns `undefined` when it does not parse.
 */
export function parseEnvValue(kind: FieldKind, text: string): unknown {
  const t = text.trim();
  switch (kind.type) {
    case 'integer':
      if (kind.infinity && /^(\+?inf(inity)?|\.inf)$/i.test(t)) return Number.POSITIVE_INFINITY;
      return /^[+-]?\d+$/.test(t) ? checkValue(kind, Number(t)) : undefined;
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(t)) return true;
      if (/^(false|0|no|off)$/i.test(t)) return false;
      return undefined;
    default:
      return checkValue(kind, t);
  }
}

/** Shows a given value in an error message, shortened; the caller never passes secrets. */
export function showValue(value: unknown): string {
  let text: string;
  if (value === null) return '`null` (null)';
  if (typeof value === 'string') text = value;
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  if (text.length > 60) text = `${text.slice(0, 57)}...`;
  const type = Array.isArray(value) ? 'list' : typeof value === 'object' ? 'map' : typeof value;
  return `\`${text}\` (${type})`;
}
