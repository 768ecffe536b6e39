/**
 * The shape of a CLI command and what it is given to run.
 *
 * A command declares its arguments and options (for parsing and `--help`), and `run`
 * returns a result: an exit code, the data printed by `--json`, and the text printed
 * otherwise. A command throws for conditions that stop it (`CliError`, `WalguardError`);
 * `run-cli.ts` turns those into the same two outputs and an exit code.
 */
import type { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Progress, ProgressStream } from './progress.js';
import type { Target } from './target.js';
import type { TerminalInput } from './terminal-input.js';

/** An option of a command. */
export interface OptionSpec {
  /** `string` takes a value; `boolean` is a flag. */
  type: 'string' | 'boolean';
  /** One-letter alias. */
  short?: string;
  /** The value's name in help, e.g. `DIR`. */
  valueName?: string;
  /** One line of help. */
  help: string;
}

/** A CLI command. */
export interface CommandSpec {
  /** Its name, as typed. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional arguments, in order (`<db>` is optional when `--config` names `path`). */
  args: readonly { name: string; required: boolean; help: string }[];
  /** Options of this command (the global ones are added by the parser). */
  options: Readonly<Record<string, OptionSpec>>;
  /** Paragraphs of help shown after the usage line. */
  description: string;
  /** What `--json` prints on success, in a sentence or two. */
  json: string;
  /** Exit codes worth knowing for this command beyond 0 and 2. */
  exitCodes: readonly [number, string][];
  /** Runs the command. */
  run(context: CommandContext): Promise<CommandResult>;
}

/** What a command returns. */
export interface CommandResult {
  /** The process exit code. */
  exitCode: number;
  /** The `--json` output (without `ok`, `command` and `exitCode`, which are added). */
  data: Record<string, unknown>;
  /** The text output. */
  text: string;
}

/** Input and output of one CLI run. */
export interface CliIo {
  /** Where results go. */
  stdout: Writable & { isTTY?: boolean };
  /** Where errors, prompts, logs and progress go. */
  stderr: Writable & ProgressStream;
  /** Standard input: passphrase and confirmations. */
  stdin: TerminalInput;
  /** The environment. */
  env: NodeJS.ProcessEnv;
  /** The working directory. */
  cwd: string;
}

/** What a command is given. */
export interface CommandContext {
  /** Positional arguments by name (`db` is undefined when it was left to `--config`). */
  args: Readonly<Record<string, string | undefined>>;
  /** Option values, by long name. */
  values: Readonly<Record<string, string | boolean | undefined>>;
  /** True with `--json`. */
  json: boolean;
  /** Input and output. */
  io: CliIo;
  /** The CLI's logger (stderr). */
  logger: Logger;
  /** The database, its options and its key source; resolved on first call. */
  target(): Promise<Target>;
  /** A progress bar on stderr (drawn only when progress is on). */
  progress(label: string): Progress;
}
