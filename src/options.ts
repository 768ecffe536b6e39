/**
 * walguard's options: their meaning, unit, bounds and defaults, and their validation.
 *
 * Options are checked once, in `resolveOptions`, when `openDatabase` is called; the result is
 * frozen and the hot path never re-validates. A bad option fails the open with
 * `INVALID_OPTION` and a message of the form
 * "Expected `maxBatchUnits` to be an integer >= 1, got `0` (number)".
 */
import os from 'node:os';
import path from 'node:path';
import type { LogConfig } from 'kysely';
import pino, { type Logger } from 'pino';
import * as z from 'zod';
import { didYouMean } from './config/did-you-mean.js';
import { WalguardError } from './errors.js';
import type { MigrationsInput } from './repo/migrations.js';

/** SQLite's `synchronous` levels walguard accepts (OFF is refused: it breaks the contract). */
export type SynchronousLevel = 'NORMAL' | 'FULL' | 'EXTRA';

/** How to unlock an encrypted database. */
export type EncryptionOptions =
  /** A raw key string, passed to libSQL as is (aes256cbc). */
  | { key: string }
  /** A passphrase, stretched with scrypt and a salt kept in `<db>.keyinfo`. */
  | { passphrase: string };

/** Options of `openDatabase`. */
export interface WalguardOptions {
  /** Path of the database file, relative to the working directory or absolute. A missing parent folder is created. Required unless `url` is given. */
  path?: string;
  /** A PostgreSQL database instead of a file: `postgres://user:password@host:port/database` (or `postgresql://…`). Exclusive with `path`; file-only options are refused with it (see docs/postgres.md). */
  url?: string;
  /** SQLite `synchronous` level of every commit of a critical unit. Default `FULL`. */
  synchronous?: SynchronousLevel;
  /** How long a connection waits for a lock held by another connection, in ms (>= 0). Default 5000. */
  busyTimeoutMs?: number;
  /** Page cache per connection, in KiB (>= 0; SQLite's negative `cache_size`). Default 16384 (16 MiB). */
  cacheSizeKiB?: number;
  /** `wal_autocheckpoint`: pages in the WAL before SQLite checkpoints on commit (>= 0; 0 disables). Default 1000. */
  walAutocheckpointPages?: number;
  /** Most units in one batch (one transaction, one fsync), integer >= 1. Default 1024. */
  maxBatchUnits?: number;
  /** Most bytes of SQL and parameters in one batch, integer >= 1024. A single larger unit still runs alone. Default 4 MiB. */
  maxBatchBytes?: number;
  /** Most units waiting in the queue, integer >= 1. Past it callers wait (backpressure). Default 10000. */
  maxPendingUnits?: number;
  /** Most bytes waiting in the queue, integer >= 1024. Past it callers wait (backpressure). Default 64 MiB. */
  maxPendingBytes?: number;
  /** Most callers waiting for room in a full queue, integer >= 0; past it a caller gets `QUEUE_FULL` at once. Default 10000. */
  maxWaitingCallers?: number;
  /** How long a caller waits for room in a full queue before `QUEUE_FULL`, in ms (>= 0, or Infinity). Default 30000. */
  queueTimeoutMs?: number;
  /** Extra time a batch waits for more units before it starts, in ms (>= 0). Default 0: batches grow while the previous COMMIT runs. */
  lingerMs?: number;
  /** Longest time a deferred unit waits before it is applied, in ms (>= 0). Default 100. */
  deferredFlushMs?: number;
  /** Longest life of an interactive transaction once it has started, in ms (>= 1). Default 5000. */
  transactionTimeoutMs?: number;
  /** Longest life of one migration's transaction, in ms (>= 1). Default 600000 (10 min). */
  migrationTimeoutMs?: number;
  /** Encryption at rest; omit for a plaintext database. */
  encryption?: EncryptionOptions;
  /** A pino logger (walguard logs through a child of it), or `false` for silence. Default: pino at level `warn`, or `$WALGUARD_LOG_LEVEL`. */
  logger?: Logger | false;
  /** Integrity check run at open: `quick` (`quick_check`), `full` (`integrity_check`) or `off`. Default `quick`. */
  integrityCheck?: 'quick' | 'full' | 'off';
  /** What a damaged database does at open: `fail` with `CORRUPT`, or `restore` (quarantine it, then restore the newest backup that passes its check). Default `fail`. */
  onCorruption?: 'fail' | 'restore';
  /** Backups (see `Walguard.backup()`). */
  backup?: BackupOptions;
  /** Checkpoints beyond SQLite's `wal_autocheckpoint`. */
  checkpoint?: CheckpointOptions;
  /** Reads: the reader threads, and which reads run on the main thread. */
  readers?: ReaderOptions;
  /** On SIGINT, SIGTERM or SIGHUP that nothing else listens to, close the database, then let the process exit as it would have; an app with its own handler for a signal owns shutdown (it calls `close()`). Default true. (`beforeExit` closes it either way, flushing deferred units.) */
  handleSignals?: boolean;
  /** How long a signal-triggered close may take before the process exits anyway, in ms (>= 1). Default 10000. */
  shutdownTimeoutMs?: number;
  /** How long to wait for another process to release the database, in ms (>= 0). Default 0: fail with `LOCKED` at once. */
  lockWaitMs?: number;
  /** Return every INTEGER value as a `bigint`, exact over the whole 64-bit range (reads, `RETURNING`, transactions). Default false: INTEGER values are numbers, exact only up to 2^53 (`Number.MAX_SAFE_INTEGER`); `insertId` is an exact `bigint` either way. */
  safeIntegers?: boolean;
  /** Kysely's `log` option (levels or a function) for `db.kysely`, `db.transaction()` and migrations: queries, and `begin`/`commit`/`rollback`, as Kysely's SQLite dialect logs them. Default none (no logging, no cost). */
  kyselyLog?: LogConfig;
  /** Migrations to run at open (a store's `MigrationSet`, an array of sets, or a record of Kysely migrations), each in its own transaction through the writer; a backup is taken first when any is pending (`backup.beforeMigrations`). Default none. */
  migrations?: MigrationsInput;
}

/** Backup options. */
export interface BackupOptions {
  /** The backup folder. Default: `backups/` beside the database. */
  dir?: string;
  /** Backups always kept, newest first, integer >= 1. Default 7. */
  keepLast?: number;
  /** Beyond those, the newest backup of each UTC day is kept for this many days, integer >= 0. Default 7. */
  keepDailyDays?: number;
  /** Take a backup right after each open. Default false. */
  onOpen?: boolean;
  /** Take a backup before running pending migrations. Default true. */
  beforeMigrations?: boolean;
  /** Take a backup every this many ms while open (>= 0; 0 = never). Default 0. */
  intervalMs?: number;
}

/** Checkpoint options. */
export interface CheckpointOptions {
  /** Run a PASSIVE checkpoint once the write queue has been idle this long, in ms (>= 0; 0 = never). Default 2000. */
  idleMs?: number;
  /** Run a TRUNCATE checkpoint when the WAL grows past this many bytes; also SQLite's `journal_size_limit` (>= 65536). Default 64 MiB. */
  walSizeLimitBytes?: number;
}

/**
 * Reader options. Reads run on the main thread while they are cheap (measured per SQL text)
 * and on reader threads — worker threads with a read connection each — when they are not,
 * so that no read can freeze the process (see `repo/read-router.ts`).
 */
export interface ReaderOptions {
  /** Reader threads, integer from 1 to 64. Default: the machine's cores minus one, from 1 to 4 (`defaultReaderThreads()`). */
  threads?: number;
  /** A read whose measured cost (by SQL text) is at most this many µs runs on the main thread; costlier and not-yet-measured ones run on a reader thread. Integer >= 0 (0: every read on a reader thread), or Infinity (every read on the main thread, `readOnReaderThread` ones too, as before reader threads existed; streams still run on a reader thread). Default 250. */
  mainThreadMaxUs?: number;
  /** How long main-thread reads may hold one event-loop turn, in µs; past it the next read goes to a reader thread while the loop turns. Integer >= 0, or Infinity (never). Default 1000. */
  turnBudgetUs?: number;
  /** CPU niceness of the reader threads, integer from 0 (as the process) to 19 (lowest): they get the CPU the main thread and the writer leave over. Linux only (elsewhere threads share the process's priority). Default 10. */
  nice?: number;
}

/** Options after defaults and validation; frozen. */
export interface ResolvedOptions {
  /** Absolute path of the database file; on PostgreSQL the URL without its password (for logs). */
  readonly path: string;
  /** Which engine: `sqlite` (a `path`) or `postgres` (a `url`). */
  readonly engine: 'sqlite' | 'postgres';
  /** The PostgreSQL URL (with its password), when `engine` is `postgres`. */
  readonly url: string | undefined;
  readonly synchronous: SynchronousLevel;
  readonly busyTimeoutMs: number;
  readonly cacheSizeKiB: number;
  readonly walAutocheckpointPages: number;
  readonly maxBatchUnits: number;
  readonly maxBatchBytes: number;
  readonly maxPendingUnits: number;
  readonly maxPendingBytes: number;
  readonly maxWaitingCallers: number;
  readonly queueTimeoutMs: number;
  readonly lingerMs: number;
  readonly deferredFlushMs: number;
  readonly transactionTimeoutMs: number;
  readonly migrationTimeoutMs: number;
  readonly encryption: Readonly<EncryptionOptions> | undefined;
  readonly logger: Logger;
  readonly integrityCheck: 'quick' | 'full' | 'off';
  readonly onCorruption: 'fail' | 'restore';
  readonly backup: Readonly<Required<BackupOptions>>;
  readonly checkpoint: Readonly<Required<CheckpointOptions>>;
  readonly readers: Readonly<Required<ReaderOptions>>;
  readonly handleSignals: boolean;
  readonly shutdownTimeoutMs: number;
  readonly lockWaitMs: number;
  readonly safeIntegers: boolean;
  readonly kyselyLog: LogConfig | undefined;
  readonly migrations: MigrationsInput | undefined;
}

/** Defaults of every optional option (see `WalguardOptions` for meaning and units). */
export const defaultOptions = Object.freeze({
  synchronous: 'FULL' as SynchronousLevel,
  busyTimeoutMs: 5000,
  cacheSizeKiB: 16384,
  walAutocheckpointPages: 1000,
  maxBatchUnits: 1024,
  maxBatchBytes: 4 * 1024 * 1024,
  maxPendingUnits: 10_000,
  maxPendingBytes: 64 * 1024 * 1024,
  maxWaitingCallers: 10_000,
  queueTimeoutMs: 30_000,
  lingerMs: 0,
  deferredFlushMs: 100,
  transactionTimeoutMs: 5000,
  migrationTimeoutMs: 600_000,
  integrityCheck: 'quick' as const,
  onCorruption: 'fail' as const,
  backup: Object.freeze({
    keepLast: 7,
    keepDailyDays: 7,
    onOpen: false,
    beforeMigrations: true,
    intervalMs: 0,
  }),
  checkpoint: Object.freeze({ idleMs: 2000, walSizeLimitBytes: 64 * 1024 * 1024 }),
  readers: Object.freeze({ mainThreadMaxUs: 250, turnBudgetUs: 1000, nice: 10 }),
  handleSignals: true,
  shutdownTimeoutMs: 10_000,
  lockWaitMs: 0,
  safeIntegers: false,
});

/** What each option must be, as said in error messages. */
const expectations: Record<string, string> = {
  path: 'a non-empty file path (not `:memory:`)',
  url: 'a `postgres://` or `postgresql://` URL',
  synchronous: "one of 'NORMAL', 'FULL', 'EXTRA'",
  busyTimeoutMs: 'an integer >= 0',
  cacheSizeKiB: 'an integer >= 0',
  walAutocheckpointPages: 'an integer >= 0',
  maxBatchUnits: 'an integer >= 1',
  maxBatchBytes: 'an integer >= 1024',
  maxPendingUnits: 'an integer >= 1',
  maxPendingBytes: 'an integer >= 1024',
  maxWaitingCallers: 'an integer >= 0',
  queueTimeoutMs: 'an integer >= 0 or Infinity',
  lingerMs: 'an integer >= 0',
  deferredFlushMs: 'an integer >= 0',
  transactionTimeoutMs: 'an integer >= 1',
  migrationTimeoutMs: 'an integer >= 1',
  encryption: 'an object with exactly one of `key` or `passphrase`, a non-empty string',
  logger: 'a pino logger or false',
  integrityCheck: "one of 'quick', 'full', 'off'",
  onCorruption: "one of 'fail', 'restore'",
  backup:
    'an object with optional `dir` (string), `keepLast` (integer >= 1), `keepDailyDays` (integer >= 0), `onOpen`, `beforeMigrations` (booleans), `intervalMs` (integer >= 0)',
  checkpoint:
    'an object with optional `idleMs` (integer >= 0) and `walSizeLimitBytes` (integer >= 65536)',
  readers:
    'an object with optional `threads` (integer from 1 to 64), `mainThreadMaxUs` and `turnBudgetUs` (integers >= 0, or Infinity), `nice` (integer from 0 to 19)',
  handleSignals: 'a boolean',
  shutdownTimeoutMs: 'an integer >= 1',
  lockWaitMs: 'an integer >= 0',
  safeIntegers: 'a boolean',
  kyselyLog: "an array of Kysely log levels ('query', 'error') or a function",
  migrations: 'a MigrationSet, an array of MigrationSets, or a record of Kysely migrations',
  'encryption.key': 'a non-empty string',
  'encryption.passphrase': 'a non-empty string',
  'backup.dir': 'a non-empty folder path',
  'backup.keepLast': 'an integer >= 1',
  'backup.keepDailyDays': 'an integer >= 0',
  'backup.onOpen': 'a boolean',
  'backup.beforeMigrations': 'a boolean',
  'backup.intervalMs': 'an integer >= 0',
  'checkpoint.idleMs': 'an integer >= 0',
  'checkpoint.walSizeLimitBytes': 'an integer >= 65536',
  'readers.threads': 'an integer from 1 to 64',
  'readers.mainThreadMaxUs': 'an integer >= 0 (µs), or Infinity',
  'readers.turnBudgetUs': 'an integer >= 0 (µs), or Infinity',
  'readers.nice': 'an integer from 0 to 19',
};

const int = (min: number) => z.number().int().min(min);

const schema = z.strictObject({
  path: z
    .string()
    .min(1)
    .refine((p) => p !== ':memory:' && !p.startsWith('file:'))
    .optional(),
  url: z
    .string()
    .regex(/^postgres(ql)?:\/\//)
    .optional(),
  synchronous: z
    .string()
    .transform((s) => s.toUpperCase())
    .pipe(z.enum(['NORMAL', 'FULL', 'EXTRA']))
    .optional(),
  busyTimeoutMs: int(0).optional(),
  cacheSizeKiB: int(0).optional(),
  walAutocheckpointPages: int(0).optional(),
  maxBatchUnits: int(1).optional(),
  maxBatchBytes: int(1024).optional(),
  maxPendingUnits: int(1).optional(),
  maxPendingBytes: int(1024).optional(),
  maxWaitingCallers: int(0).optional(),
  queueTimeoutMs: z.union([int(0), z.literal(Number.POSITIVE_INFINITY)]).optional(),
  lingerMs: int(0).optional(),
  deferredFlushMs: int(0).optional(),
  transactionTimeoutMs: int(1).optional(),
  migrationTimeoutMs: int(1).optional(),
  encryption: z
    .union([
      z.strictObject({ key: z.string().min(1) }),
      z.strictObject({ passphrase: z.string().min(1) }),
    ])
    .optional(),
  logger: z
    .union([
      z.literal(false),
      z.custom<Logger>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Logger).child === 'function',
      ),
    ])
    .optional(),
  integrityCheck: z.enum(['quick', 'full', 'off']).optional(),
  onCorruption: z.enum(['fail', 'restore']).optional(),
  backup: z
    .strictObject({
      dir: z.string().min(1).optional(),
      keepLast: int(1).optional(),
      keepDailyDays: int(0).optional(),
      onOpen: z.boolean().optional(),
      beforeMigrations: z.boolean().optional(),
      intervalMs: int(0).optional(),
    })
    .optional(),
  checkpoint: z
    .strictObject({ idleMs: int(0).optional(), walSizeLimitBytes: int(65536).optional() })
    .optional(),
  readers: z
    .strictObject({
      threads: int(1).max(64).optional(),
      mainThreadMaxUs: z.union([int(0), z.literal(Number.POSITIVE_INFINITY)]).optional(),
      turnBudgetUs: z.union([int(0), z.literal(Number.POSITIVE_INFINITY)]).optional(),
      nice: int(0).max(19).optional(),
    })
    .optional(),
  handleSignals: z.boolean().optional(),
  shutdownTimeoutMs: int(1).optional(),
  lockWaitMs: int(0).optional(),
  safeIntegers: z.boolean().optional(),
  kyselyLog: z
    .union([
      z.array(z.enum(['query', 'error'])),
      z.custom<LogConfig>((v) => typeof v === 'function'),
    ])
    .optional(),
  migrations: z.custom<MigrationsInput>((v) => typeof v === 'object' && v !== null).optional(),
});

/** Shows a given value in an error message; never shows secrets. */
function show(key: string, value: unknown): string {
  if (key === 'encryption') return value === null ? '`null`' : `(${typeof value}, not shown)`;
  if (key === 'url' && typeof value === 'string') value = redactPassword(value);
  let text: string;
  try {
    text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  if (text.length > 60) text = `${text.slice(0, 57)}...`;
  return `\`${text}\` (${value === null ? 'null' : typeof value})`;
}

/** The options (`section` undefined) or a section's keys that a message may suggest. */
function knownKeys(section: string | undefined): string[] {
  const keys = Object.keys(expectations);
  if (section === undefined) return keys.filter((k) => !k.includes('.'));
  return keys.filter((k) => k.startsWith(`${section}.`)).map((k) => k.slice(section.length + 1));
}

/**
 * "Unknown option `backup.keeplast`; did you mean `backup.keepLast`?": a close name in the
 * same section, or else the same name one level away (`keepLast` at the top level).
 */
function unknownOption(name: string, section: string | undefined): string {
  const dotted = section === undefined ? name : `${section}.${name}`;
  let hint = didYouMean(name, knownKeys(section));
  if (hint !== undefined && section !== undefined) hint = `${section}.${hint}`;
  if (hint === undefined) {
    const elsewhere = Object.keys(expectations).filter(
      (k) => k !== dotted && (section === undefined ? k.includes('.') : !k.includes('.')),
    );
    const leaf = didYouMean(
      name,
      elsewhere.map((k) => k.split('.').pop() as string),
    );
    hint = elsewhere.find((k) => k.split('.').pop() === leaf);
  }
  return `Unknown option \`${dotted}\`${hint ? `; did you mean \`${hint}\`?` : ''}`;
}

/**
 * What is wrong with `encryption`, said plainly: a secret that is `undefined` (an unset
 * environment variable, typically) or empty is named as such. Secrets are never shown.
 */
function encryptionMessage(value: unknown): string {
  const expected = `Expected \`encryption\` to be ${expectations.encryption}`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return `${expected}, got ${show('encryption', value)}`;
  }
  const keys = Object.keys(value);
  const unknown = keys.filter((k) => k !== 'key' && k !== 'passphrase');
  if (unknown.length > 0) return unknown.map((k) => unknownOption(k, 'encryption')).join('; ');
  if (keys.length !== 1) {
    return `${expected}, got ${keys.length === 0 ? 'neither' : 'both'}`;
  }
  const name = `encryption.${keys[0]}`;
  const secret = (value as Record<string, unknown>)[keys[0] as string];
  if (secret === undefined) {
    return `\`${name}\` is undefined: expected a non-empty string (is the environment variable it is read from set?)`;
  }
  if (secret === '') return `\`${name}\` is an empty string: expected a non-empty string`;
  return `Expected \`${name}\` to be a non-empty string, got ${show('encryption', secret)}`;
}

/** Validates `options` and applies defaults; throws `INVALID_OPTION` naming every bad option. */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new WalguardError(
      'INVALID_OPTION',
      `Expected options to be an object with at least \`path\`, got ${show('options', options)}`,
    );
  }
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const messages = parsed.error.issues.map((issue) => {
      const section = issue.path.length > 0 ? String(issue.path[0]) : undefined;
      if (section === 'encryption') {
        return encryptionMessage((options as Record<string, unknown>).encryption);
      }
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => unknownOption(key, section)).join('; ');
      }
      const key = section ?? 'options';
      const dotted = issue.path.join('.');
      const given = issue.path.reduce<unknown>(
        (v, k) => (v as Record<PropertyKey, unknown> | undefined)?.[k],
        options,
      );
      return `Expected \`${dotted || key}\` to be ${expectations[dotted] ?? expectations[key] ?? 'valid'}, got ${show(key, given)}`;
    });
    throw new WalguardError('INVALID_OPTION', [...new Set(messages)].join('; '));
  }
  const o = parsed.data;
  const engine = resolveEngine(o);
  const logger =
    o.logger === false
      ? pino({ level: 'silent' })
      : (o.logger ??
        pino(
          { name: 'walguard', level: process.env.WALGUARD_LOG_LEVEL ?? 'warn' },
          pino.destination(2),
        ));
  const file = o.path ?? '';
  const resolved: ResolvedOptions = {
    path: engine === 'postgres' ? redactPassword(o.url!) : path.resolve(file),
    engine,
    url: o.url,
    synchronous: (o.synchronous ?? defaultOptions.synchronous) as SynchronousLevel,
    busyTimeoutMs: o.busyTimeoutMs ?? defaultOptions.busyTimeoutMs,
    cacheSizeKiB: o.cacheSizeKiB ?? defaultOptions.cacheSizeKiB,
    walAutocheckpointPages: o.walAutocheckpointPages ?? defaultOptions.walAutocheckpointPages,
    maxBatchUnits: o.maxBatchUnits ?? defaultOptions.maxBatchUnits,
    maxBatchBytes: o.maxBatchBytes ?? defaultOptions.maxBatchBytes,
    maxPendingUnits: o.maxPendingUnits ?? defaultOptions.maxPendingUnits,
    maxPendingBytes: o.maxPendingBytes ?? defaultOptions.maxPendingBytes,
    maxWaitingCallers: o.maxWaitingCallers ?? defaultOptions.maxWaitingCallers,
    queueTimeoutMs: o.queueTimeoutMs ?? defaultOptions.queueTimeoutMs,
    lingerMs: o.lingerMs ?? defaultOptions.lingerMs,
    deferredFlushMs: o.deferredFlushMs ?? defaultOptions.deferredFlushMs,
    transactionTimeoutMs: o.transactionTimeoutMs ?? defaultOptions.transactionTimeoutMs,
    migrationTimeoutMs: o.migrationTimeoutMs ?? defaultOptions.migrationTimeoutMs,
    encryption: o.encryption ? Object.freeze({ ...o.encryption }) : undefined,
    // `lib` marks walguard's lines; each part adds its own `component` (open, writer, backup,
    // …) under it, so no line carries a key twice.
    logger: logger.child({ lib: 'walguard' }),
    integrityCheck: o.integrityCheck ?? defaultOptions.integrityCheck,
    onCorruption: o.onCorruption ?? defaultOptions.onCorruption,
    backup: Object.freeze({
      ...defaultOptions.backup,
      ...definedOnly(o.backup ?? {}),
      dir: path.resolve(o.backup?.dir ?? path.join(path.dirname(path.resolve(file)), 'backups')),
    }),
    checkpoint: Object.freeze({ ...defaultOptions.checkpoint, ...definedOnly(o.checkpoint ?? {}) }),
    readers: Object.freeze({
      threads: defaultReaderThreads(),
      ...defaultOptions.readers,
      ...definedOnly(o.readers ?? {}),
    }),
    handleSignals: o.handleSignals ?? defaultOptions.handleSignals,
    shutdownTimeoutMs: o.shutdownTimeoutMs ?? defaultOptions.shutdownTimeoutMs,
    lockWaitMs: o.lockWaitMs ?? defaultOptions.lockWaitMs,
    safeIntegers: o.safeIntegers ?? defaultOptions.safeIntegers,
    kyselyLog: o.kyselyLog as LogConfig | undefined,
    migrations: o.migrations,
  };
  return Object.freeze(
    engine === 'postgres' ? { ...resolved, ...POSTGRES_FILE_SERVICES_OFF } : resolved,
  );
}

/**
 * The default number of reader threads: the cores left beside the main thread, from 1 to 4.
 * The writer's thread and the main thread need cores of their own; measured on 2 cores, a
 * second reader thread TODO.
 */
export function defaultReaderThreads(): number {
  return Math.min(4, Math.max(1, os.availableParallelism() - 1));
}

/** Drops keys whose value is undefined, so they do not override defaults. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ---------------------------------------------------------------------------------------
// The engine: a file (`path`) or a PostgreSQL server (`url`), and the options refused on
// PostgreSQL because they only mean something for a file.

/** Why each file-only option does not apply on PostgreSQL (said in the refusal). */
const FILE_ONLY: Readonly<Record<string, string>> = {
  encryption: "encryption at rest is the server's (or its disk's) on PostgreSQL",
  cacheSizeKiB: "the page cache is the server's `shared_buffers`",
  walAutocheckpointPages: 'the server checkpoints its own WAL',
  checkpoint: 'the server checkpoints its own WAL',
  backup: 'back up a server with pg_dump, pg_basebackup or WAL archiving',
  integrityCheck: 'quick_check/integrity_check are SQLite checks (see amcheck for PostgreSQL)',
  onCorruption: 'walguard restores only its own file backups',
  lockWaitMs:
    'several processes may open one PostgreSQL database at once: there is no process lock',
  readers:
    "reads go to a pool of read-only PostgreSQL sessions, never to the main thread; reader threads serve a file's reads",
};

/** File services turned off in the resolved options of a PostgreSQL database. */
const POSTGRES_FILE_SERVICES_OFF = Object.freeze({
  encryption: undefined,
  integrityCheck: 'off' as const,
  backup: Object.freeze({
    ...defaultOptions.backup,
    dir: '',
    onOpen: false,
    beforeMigrations: false,
    intervalMs: 0,
  }),
  checkpoint: Object.freeze({ idleMs: 0, walSizeLimitBytes: Number.MAX_SAFE_INTEGER }),
});

/**
 * Which engine the options name; throws `INVALID_OPTION` unless exactly one of `path` and
 * `url` is given, and for a file-only option given with `url` (saying why it does not apply).
 */
function resolveEngine(o: Record<string, unknown>): 'sqlite' | 'postgres' {
  if (o.url === undefined) {
    if (o.path === undefined) {
      throw new WalguardError(
        'INVALID_OPTION',
        'Expected `path` (a database file) or `url` (a PostgreSQL server), got neither',
      );
    }
    return 'sqlite';
  }
  const refused: string[] = [];
  if (o.path !== undefined) {
    refused.push('`path` and `url` are exclusive: a database is a file or a PostgreSQL server');
  }
  for (const [key, why] of Object.entries(FILE_ONLY)) {
    if (o[key] !== undefined) refused.push(`\`${key}\` does not apply with \`url\`: ${why}`);
  }
  if (o.synchronous === 'NORMAL') {
    refused.push(
      "`synchronous: 'NORMAL'` does not apply with `url`: on PostgreSQL it would be synchronous_commit=off for every commit, which loses acknowledged writes when the server crashes; use defer() for writes that may wait for the next flush",
    );
  }
  if (refused.length > 0) throw new WalguardError('INVALID_OPTION', refused.join('; '));
  return 'postgres';
}

/** A URL with its password replaced by `***` (options are shown in errors and logs). */
function redactPassword(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/, '$1***@');
}
