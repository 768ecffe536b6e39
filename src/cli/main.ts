#!/usr/bin/env node
/**
 * The `walguard` command: see docs/cli.md, or `walguard --help`.
 *
 * Once the command is done and its output flushed, the process ends by itself, so that
 * libsql frees the connections it still holds (its `close()` defers that, libsql-js #228).
 * A stray timer or worker must never keep an operator's shell (or a cron job) waiting: after
 * 2 s the process exits regardless.
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
  process.stderr.write('', () => {
    setTimeout(() => process.exit(code), 2000).unref();
  });
});
