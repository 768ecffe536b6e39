#!/usr/bin/env node
/**
 * The `walguard` command: see docs/cli.md, or `walguard --help`.
 *
 * The process exits as soon as the command is done and its output is flushed: a stray timer
 * or worker must never keep an operator's shell (or a cron job) waiting.
 */
import { runCli } from './run-cli.js';
import { TerminalInput } from './terminal-input.js';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: new TerminalInput(process.stdin, process.stderr),
  env: process.env,
  cwd: process.cwd(),
});
process.exitCode = code;
process.stdout.write('', () => {
  process.stderr.write('', () => process.exit(code));
});
