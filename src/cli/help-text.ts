/** The CLI's `--help` texts, built from the command specs so they cannot drift from the parser. */
import type { CommandSpec, OptionSpec } from './command.js';
import { EXIT } from './exit-codes.js';

/** Options every command accepts. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = Object.freeze({
  config: {
    type: 'string',
    valueName: 'FILE',
    help: 'configuration file (YAML; default $WALGUARD_CONFIG); see docs/configuration.md',
  },
  json: { type: 'boolean', help: 'print one JSON object on stdout (errors included)' },
  'key-file': {
    type: 'string',
    valueName: 'FILE',
    help: 'read the passphrase (with --raw-key: the key) from FILE',
  },
  'passphrase-stdin': {
    type: 'boolean',
    help: 'read the passphrase (with --raw-key: the key) from the first line of standard input',
  },
  'raw-key': {
    type: 'boolean',
    help: 'the secret is a raw libSQL key, not a passphrase (no key file involved)',
  },
  'log-level': {
    type: 'string',
    valueName: 'LEVEL',
    help: "walguard's log level on stderr: fatal, error, warn (default), info, debug, trace, silent",
  },
  progress: {
    type: 'boolean',
    help: 'show progress on stderr even when it is not a terminal',
  },
  'no-progress': { type: 'boolean', help: 'never show progress' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
});

/** The exit codes, for the general help. */
const EXIT_CODES: readonly [number, string][] = [
  [EXIT.OK, 'ok'],
  [EXIT.PROBLEM, 'a problem was found, or the operation failed'],
  [EXIT.USAGE, 'usage error: bad command line or configuration; nothing was done'],
  [EXIT.LOCKED, 'LOCKED: another process has the database open'],
  [EXIT.WRONG_KEY, 'WRONG_KEY: the key or passphrase does not open the database'],
  [EXIT.KEY_REQUIRED, 'KEY_REQUIRED: the database is encrypted and no key was given'],
  [EXIT.NOT_ENCRYPTED, 'NOT_ENCRYPTED: a key was given for a plaintext database'],
  [EXIT.CORRUPT, 'CORRUPT: the database (or backup) is damaged'],
  [EXIT.NOT_FOUND, 'the database or backup file does not exist'],
  [EXIT.ABORTED, 'the confirmation was declined; nothing was changed'],
];

function optionLines(options: Readonly<Record<string, OptionSpec>>): string[] {
  const entries = Object.entries(options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.valueName ? ` ${o.valueName}` : ''}`;
    return [flag, o.help] as const;
  });
  const width = Math.max(...entries.map(([f]) => f.length));
  return entries.map(([flag, help]) => `  ${flag.padEnd(width)}  ${help}`);
}

function usageLine(spec: CommandSpec): string {
  const args = spec.args.map((a) => (a.required ? `<${a.name}>` : `[<${a.name}>]`));
  const options = Object.entries(spec.options).map(
    ([name, o]) => `[--${name}${o.valueName ? ` ${o.valueName}` : ''}]`,
  );
  return `walguard ${[spec.name, ...args, ...options].join(' ')} [global options]`;
}

/** `walguard --help`. */
export function generalHelp(commands: readonly CommandSpec[], version: string): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `walguard ${version}: operate a walguard (libSQL) database`,
    '',
    'Usage: walguard <command> [<db>] [options]',
    '       walguard <command> --help',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '  --version  print the version',
    '',
    'Secrets are never taken from the command line: use --key-file, --passphrase-stdin,',
    '$WALGUARD_PASSPHRASE / $WALGUARD_KEY, or `encryption` in the configuration file.',
    '',
    'Exit codes:',
    ...EXIT_CODES.map(([code, text]) => `  ${code}  ${text}`),
    '',
    'Docs: docs/cli.md, docs/configuration.md, docs/recovery.md',
    '',
  ].join('\n');
}

/** `walguard <command> --help`. */
export function commandHelp(spec: CommandSpec): string {
  const argWidth = Math.max(...spec.args.map((a) => a.name.length + 2));
  const lines = [
    `Usage: ${usageLine(spec)}`,
    '',
    spec.summary,
    '',
    spec.description,
    '',
    'Arguments:',
    ...spec.args.map((a) => `  ${`<${a.name}>`.padEnd(argWidth)}  ${a.help}`),
  ];
  if (Object.keys(spec.options).length > 0) {
    lines.push('', 'Options:', ...optionLines(spec.options));
  }
  lines.push('', 'Global options:', ...optionLines(GLOBAL_OPTIONS));
  const codes: [number, string][] = [
    [EXIT.OK, 'ok'],
    ...spec.exitCodes,
    [EXIT.USAGE, 'usage error (command line or configuration); nothing was done'],
  ];
  codes.sort((a, b) => a[0] - b[0]);
  lines.push('', 'Exit codes:', ...codes.map(([c, t]) => `  ${c}  ${t}`));
  lines.push('', `With --json: ${spec.json}`, '');
  return lines.join('\n');
}
