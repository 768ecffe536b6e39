/**
 * The CLI's dispatcher: parses the command line, runs the command, prints its result (text
 * on stdout, or one JSON object with `--json`), and returns the exit code.
 *
 * Every failure ends here as one of the documented exit codes with a message that names
 * the next step; with `--json` the same failure is a JSON object on stdout
 * (`{ "ok": false, "exitCode": …, "error": { "code", "message" } }`), so scripts read one
 * stream. Nothing printed ever contains a secret: secrets are never arguments, and the
 * library's messages never include them.
 */
import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import pino from 'pino';
import { LOG_LEVELS } from '../config/config-schema.js';
import { didYouMean } from '../config/did-you-mean.js';
import { isWalguardError } from '../errors.js';
import { backupCommand } from './backup-command.js';
import { backupsCommand } from './backups-command.js';
import { checkCommand } from './check-command.js';
import type { CliIo, CommandContext, CommandResult, CommandSpec, OptionSpec } from './command.js';
import { copyCommand } from './copy-command.js';
import { CliError, EXIT, errorCodeOf, exitCodeOf } from './exit-codes.js';
import { commandHelp, GLOBAL_OPTIONS, generalHelp } from './help-text.js';
import { initCommand } from './init-command.js';
import { checkpointCommand, optimizeCommand, vacuumCommand } from './maintenance-commands.js';
import { Progress } from './progress.js';
import { restoreCommand } from './restore-command.js';
import { statusCommand } from './status-command.js';
import { resolveTarget, type Target } from './target.js';

/** Every command, in help order. */
export const COMMANDS: readonly CommandSpec[] = [
  statusCommand,
  checkCommand,
  backupCommand,
  backupsCommand,
  restoreCommand,
  checkpointCommand,
  vacuumCommand,
  optimizeCommand,
  initCommand,
  copyCommand,
];

/** What to do next, by error code, for the text output. */
const HINTS: Record<string, string> = {
  LOCKED:
    'Another process has the database open. Stop it (SIGTERM: walguard drains and closes), then try again; `walguard status` shows its pid.',
  WRONG_KEY:
    'Check where the secret comes from (--key-file, --passphrase-stdin, $WALGUARD_PASSPHRASE, the config). Nothing was changed.',
  KEY_REQUIRED:
    'Give the secret with --key-file FILE, --passphrase-stdin, $WALGUARD_PASSPHRASE (or $WALGUARD_KEY), or `encryption` in --config. If the key file <db>.keyinfo is missing, copy it back from a backup (see docs/recovery.md).',
  NOT_ENCRYPTED:
    'The file is plaintext: run without a secret (is $WALGUARD_PASSPHRASE set?). Nothing was written to it.',
  CORRUPT:
    'Nothing was changed. See docs/recovery.md; `walguard restore <db> latest` restores the newest backup that passes its check.',
  INVALID_OPTION: 'Fix the option named above.',
};

/** The package version, from package.json. */
function version(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Runs the CLI with `argv` (without `node` and the script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  const first = argv[0];
  if (first === undefined) {
    io.stderr.write(generalHelp(COMMANDS, version()));
    return EXIT.USAGE;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    const about = COMMANDS.find((c) => c.name === argv[1]);
    io.stdout.write(about === undefined ? generalHelp(COMMANDS, version()) : commandHelp(about));
    return EXIT.OK;
  }
  if (first === '--version' || first === '-V') {
    io.stdout.write(`${version()}\n`);
    return EXIT.OK;
  }
  const spec = COMMANDS.find((c) => c.name === first);
  let result: CommandResult;
  let failed: unknown;
  try {
    if (spec === undefined) throw unknownCommand(first);
    const parsed = parse(spec, argv.slice(1));
    if (parsed.values.help === true) {
      io.stdout.write(commandHelp(spec));
      return EXIT.OK;
    }
    const context = makeContext(spec, parsed, io, json);
    result = await spec.run(context);
  } catch (error) {
    failed = error;
    result = errorResult(error);
  } finally {
    io.stdin.close();
  }
  print(io, spec?.name ?? first, result, json, failed);
  return result.exitCode;
}

interface Parsed {
  values: Record<string, string | boolean | undefined>;
  args: Record<string, string | undefined>;
}

/** Parses the options and names the positional arguments of `spec`. */
function parse(spec: CommandSpec, argv: string[]): Parsed {
  const all: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS, ...spec.options };
  const options = Object.fromEntries(
    Object.entries(all).map(([name, o]) => [
      name,
      o.short === undefined ? { type: o.type } : { type: o.type, short: o.short },
    ]),
  );
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: options as ParseArgsConfig['options'],
      allowPositionals: true,
      strict: true,
    }) as { values: Record<string, string | boolean | undefined>; positionals: string[] });
  } catch (error) {
    throw usageFromParseError(error, spec, Object.keys(all));
  }
  if (values.help === true) return { values, args: {} };
  if (values.progress === true && values['no-progress'] === true) {
    throw new CliError('USAGE', 'Give --progress or --no-progress, not both');
  }
  const level = values['log-level'];
  if (typeof level === 'string' && !(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new CliError(
      'USAGE',
      `Expected --log-level to be one of ${LOG_LEVELS.join(', ')}, got \`${level}\``,
    );
  }
  // `db` may be left to --config: when the arguments are one short, it is the one omitted.
  const required = spec.args.filter((a) => a.required).length;
  const rest = [...positionals];
  const args: Record<string, string | undefined> = {};
  for (const a of spec.args) {
    if (a.name === 'db' && !a.required && rest.length <= required) args.db = undefined;
    else args[a.name] = rest.shift();
    if (a.required && args[a.name] === undefined) {
      throw new CliError(
        'USAGE',
        `Missing <${a.name}>: ${a.help}. See walguard ${spec.name} --help`,
      );
    }
  }
  if (rest.length > 0) {
    throw new CliError(
      'USAGE',
      `Unexpected argument \`${rest[0]}\`. See walguard ${spec.name} --help`,
    );
  }
  return { values, args };
}

/** The usage error for what `parseArgs` refused, with "did you mean" for options. */
function usageFromParseError(error: unknown, spec: CommandSpec, names: string[]): CliError {
  const code = (error as { code?: string }).code;
  const message = (error as Error).message;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /'(-{1,2}[^'=\s]+)/.exec(message)?.[1] ?? message;
    const bare = option.replace(/^-+/, '');
    if (/^(pass(word|phrase)?|key|secret)$/i.test(bare)) {
      return new CliError(
        'USAGE',
        `Unknown option ${option}: secrets are never taken from the command line (other users see it in ps). Use --key-file FILE or --passphrase-stdin, or $WALGUARD_PASSPHRASE`,
      );
    }
    const hint = didYouMean(bare, names);
    return new CliError(
      'USAGE',
      `Unknown option ${option} for \`walguard ${spec.name}\`${hint === undefined ? '' : `; did you mean --${hint}?`} See walguard ${spec.name} --help`,
    );
  }
  // Missing option value, or a value given to a flag: parseArgs' own sentence says which.
  return new CliError('USAGE', `${message.split('\n')[0]} See walguard ${spec.name} --help`);
}

function unknownCommand(name: string): CliError {
  if (name.startsWith('-')) {
    return new CliError(
      'USAGE',
      `Expected a command first, got option ${name}. See walguard --help`,
    );
  }
  const hint = didYouMean(
    name,
    COMMANDS.map((c) => c.name),
  );
  return new CliError(
    'USAGE',
    `Unknown command \`${name}\`${hint === undefined ? '' : `; did you mean \`${hint}\`?`} Commands: ${COMMANDS.map((c) => c.name).join(', ')}`,
  );
}

function makeContext(spec: CommandSpec, parsed: Parsed, io: CliIo, json: boolean): CommandContext {
  const flagLevel = parsed.values['log-level'] as string | undefined;
  const logger = pino(
    { name: 'walguard-cli', level: flagLevel ?? io.env.WALGUARD_LOG_LEVEL ?? 'warn' },
    io.stderr,
  );
  if (flagLevel === undefined && io.env.WALGUARD_LOG_LEVEL !== undefined) {
    // The configuration's own check reports a bad $WALGUARD_LOG_LEVEL; pino would throw first.
    if (!(LOG_LEVELS as readonly string[]).includes(io.env.WALGUARD_LOG_LEVEL)) {
      logger.level = 'warn';
    }
  }
  const progressOn =
    parsed.values['no-progress'] === true
      ? false
      : parsed.values.progress === true || io.stderr.isTTY === true;
  let target: Promise<Target> | undefined;
  return {
    args: parsed.args,
    values: parsed.values,
    json,
    io,
    logger: logger.child({ command: spec.name }),
    target() {
      target ??= resolveTarget(io, parsed.args.db, parsed.values, logger);
      return target;
    },
    progress: (label) => new Progress(io.stderr, label, progressOn),
  };
}

/** The result of a command that threw. */
function errorResult(error: unknown): CommandResult {
  const exitCode = exitCodeOf(error);
  const details =
    error instanceof CliError || isWalguardError(error) ? (error.details ?? undefined) : undefined;
  return {
    exitCode,
    data: {
      error: {
        code: errorCodeOf(error),
        message: (error as Error)?.message ?? String(error),
        ...(details === undefined ? {} : { details }),
      },
    },
    text: '',
  };
}

function print(
  io: CliIo,
  command: string,
  result: CommandResult,
  json: boolean,
  thrown: unknown,
): void {
  if (json) {
    const out = {
      ok: result.exitCode === EXIT.OK,
      command,
      exitCode: result.exitCode,
      ...result.data,
    };
    io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  if (result.text !== '') {
    (result.exitCode === EXIT.OK || thrown === undefined ? io.stdout : io.stderr).write(
      result.text,
    );
  }
  if (thrown === undefined) {
    // A report that could not be completed (status without the key, …): what to do next.
    const code = (result.data.error as { code?: string } | undefined)?.code;
    const hint = code === undefined || code === 'CORRUPT' ? undefined : HINTS[code];
    if (hint !== undefined) io.stderr.write(`${hint}\n`);
  } else {
    const code = errorCodeOf(thrown);
    const message = (thrown as Error)?.message ?? String(thrown);
    const hint = HINTS[code];
    // docs/cli.md's form for every error, usage errors included: `walguard <command>: <CODE>: <message>`.
    io.stderr.write(
      `walguard ${command}: ${code}: ${message}\n${hint === undefined ? '' : `${hint}\n`}`,
    );
  }
}
