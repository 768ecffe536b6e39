/**
 * Which database a command works on, with which options and which secret.
 *
 * Options come from the configuration file (`--config`, or `$WALGUARD_CONFIG`) and the
 * `WALGUARD_*` environment (see src/config), then the command line: the `<db>` argument
 * overrides `path`, and `--key-file` / `--passphrase-stdin` override the configured secret.
 * A secret is never taken from a command-line argument: `ps` shows those to every user.
 *
 * `unlock` is the open sequence's first decisions, without opening anything for writing:
 * inspect the file (before any connection of this process opens it), refuse what the
 * options cannot open (`NOT_ENCRYPTED`, `KEY_REQUIRED`, `CORRUPT` from the header alone),
 * and derive and verify the key. `explainChildError` turns what the SQLite child reports
 * into the same codes `openDatabase` uses.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { readConfig } from '../config/load-config.js';
import { type DatabaseFileInfo, inspectDatabaseFile } from '../durability/file-inspect.js';
import {
  checkFileAgainstOptions,
  explainOpenError,
  type ResolvedKey,
  resolveKey,
} from '../durability/open-sequence.js';
import { batchFatalCode, WalguardError, type WalguardErrorCode } from '../errors.js';
import {
  type EncryptionOptions,
  type ResolvedOptions,
  resolveOptions,
  type WalguardOptions,
} from '../options.js';
import type { CliIo } from './command.js';
import { CliError } from './exit-codes.js';

/** A database to work on. */
export interface Target {
  /** Absolute path of the database file. */
  path: string;
  /** The options (configuration, environment and command line merged). */
  options: WalguardOptions;
  /** The same, validated and with defaults. */
  resolved: ResolvedOptions;
  /** The configuration file read, if any. */
  configFile: string | undefined;
  /** Where the secret came from, in words (never the secret), or undefined for none. */
  secretSource: string | undefined;
  /** `passphrase`, `key` or `none`. */
  encryption: 'passphrase' | 'key' | 'none';
}

/** Builds the target of a command from its arguments. */
export async function resolveTarget(
  io: CliIo,
  dbArgument: string | undefined,
  values: Readonly<Record<string, string | boolean | undefined>>,
  logger: Logger,
): Promise<Target> {
  const configFile = (values.config as string | undefined) ?? io.env.WALGUARD_CONFIG;
  const loaded = readConfig(configFile === '' ? undefined : configFile, {
    env: io.env,
    cwd: io.cwd,
  });
  if (values['log-level'] === undefined && loaded.logLevel !== undefined) {
    logger.level = loaded.logLevel;
  }
  const dbPath = dbArgument === undefined ? loaded.options.path : path.resolve(io.cwd, dbArgument);
  if (dbPath === undefined) {
    throw new CliError(
      'USAGE',
      'No database given: pass its path as the first argument, or a configuration file with `path` (--config FILE or $WALGUARD_CONFIG)',
    );
  }
  const cli = await readCliSecret(io, values);
  const encryption = cli?.encryption ?? loaded.options.encryption;
  const options: WalguardOptions = {
    ...loaded.options,
    path: dbPath,
    encryption,
    logger,
  };
  const resolved = resolveOptions(options);
  return {
    path: resolved.path,
    options,
    resolved,
    configFile: loaded.file,
    secretSource: cli?.source ?? loaded.secretSource,
    encryption: encryption === undefined ? 'none' : 'key' in encryption ? 'key' : 'passphrase',
  };
}

/** The secret from `--key-file` or `--passphrase-stdin`, if one was given. */
async function readCliSecret(
  io: CliIo,
  values: Readonly<Record<string, string | boolean | undefined>>,
): Promise<{ encryption: EncryptionOptions; source: string } | undefined> {
  const keyFile = values['key-file'] as string | undefined;
  const fromStdin = values['passphrase-stdin'] === true;
  const raw = values['raw-key'] === true;
  const kind = raw ? 'key' : 'passphrase';
  if (keyFile !== undefined && fromStdin) {
    throw new CliError('USAGE', 'Give the secret once: --key-file or --passphrase-stdin, not both');
  }
  if (raw && keyFile === undefined && !fromStdin) {
    throw new CliError(
      'USAGE',
      '--raw-key says how to read the secret of --key-file or --passphrase-stdin; give one of them (or set WALGUARD_KEY)',
    );
  }
  let secret: string | undefined;
  let source: string;
  if (keyFile !== undefined) {
    const file = path.resolve(io.cwd, keyFile);
    try {
      secret = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new CliError(
        'USAGE',
        `Cannot read the ${kind} file ${file} (--key-file): ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    warnIfReadableByOthers(io, file);
    source = `--key-file ${file}`;
  } else if (fromStdin) {
    secret = await io.stdin.readLine(raw ? 'Key: ' : 'Passphrase: ', true);
    source = 'standard input';
  } else {
    return undefined;
  }
  if (secret === undefined || secret === '') {
    throw new CliError('USAGE', `The ${kind} from ${source} is empty`);
  }
  return {
    encryption: raw ? { key: secret } : { passphrase: secret },
    source: `${kind} from ${source}`,
  };
}

/** A secret file others can read is worth a warning (not a refusal: the operator decides). */
function warnIfReadableByOthers(io: CliIo, file: string): void {
  try {
    if (process.platform !== 'win32' && (statSync(file).mode & 0o077) !== 0) {
      io.stderr.write(
        `warning: ${file} can be read by other users (mode ${(statSync(file).mode & 0o777).toString(8)}); consider chmod 600\n`,
      );
    }
  } catch {
    // Already read successfully: the warning is best effort.
  }
}

/** The database file's facts and its key, or the error `openDatabase` would give. */
export interface Unlocked {
  /** What the header says. */
  file: DatabaseFileInfo;
  /** The key (never printed) and whether the key file verified it. */
  key: ResolvedKey;
}

/**
 * Inspects the database and derives its key, failing as `openDatabase` would (`CORRUPT`,
 * `KEY_REQUIRED`, `NOT_ENCRYPTED`, `WRONG_KEY`) — or with `NOT_FOUND` when there is no file.
 */
export async function unlock(target: Target): Promise<Unlocked> {
  const file = await inspectDatabaseFile(target.path);
  if (file.kind === 'missing') {
    throw new CliError('NOT_FOUND', `There is no database at ${target.path}`, {
      path: target.path,
    });
  }
  if (file.kind === 'empty') {
    throw new CliError(
      'PROBLEM',
      `${target.path} is empty (0 bytes): a new database whose first open never wrote its first page. The next openDatabase() makes it a database (unless its -wal holds commits)`,
      { path: target.path },
    );
  }
  checkFileAgainstOptions(file, target.resolved);
  // A read-only look: never creates a key file.
  const key = await resolveKey(file, target.resolved, { create: false });
  return { file, key };
}

const walguardCodes = new Set<WalguardErrorCode>([
  'CLOSED',
  'QUEUE_FULL',
  'LOCKED',
  'KEY_REQUIRED',
  'WRONG_KEY',
  'NOT_ENCRYPTED',
  'CORRUPT',
  'DISK_FULL',
  'IO_ERROR',
  'INVALID_OPTION',
  'TX_TIMEOUT',
  'WRONG_DATABASE',
]);

/** The error `openDatabase` would give for what the SQLite child reported. */
export function explainChildError(error: unknown, key: ResolvedKey, target: Target): unknown {
  if (error instanceof WalguardError) return error;
  const explained = explainOpenError(error, key, target.resolved);
  if (explained instanceof WalguardError) return explained;
  const code = (error as { code?: unknown }).code;
  const message = (error as Error).message;
  if (typeof code === 'string' && walguardCodes.has(code as WalguardErrorCode)) {
    return new WalguardError(code as WalguardErrorCode, message);
  }
  const fatal = batchFatalCode(error);
  if (fatal !== undefined) {
    return new WalguardError(fatal, `${target.path}: ${message}`, { cause: error });
  }
  return error;
}
