/**
 * The two ends of a benchmark child process: the runner starts a script in a fresh Node
 * process and reads its one result line back (`runChild`); the script prints that line and
 * exits with a status that says whether it got there (`runAsChild`, `printResult`).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULT_MARKER } from './trial-types.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Runs `node --import tsx <scriptArgs>` from the repository root with `env`, killed after
 * `timeoutMs`; resolves with the JSON of its result line (`RESULT_MARKER`), or why there is none.
 */
export async function runChild<T>(
  scriptArgs: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ value: T } | { error: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...scriptArgs], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARKER));
  if (code !== 0 || line === undefined) {
    const why =
      code === null
        ? `killed after ${timeoutMs} ms`
        : `exit code ${code}${line === undefined ? ' and no result line' : ''}`;
    return { error: `${why}: ${stderr.trim().split('\n').slice(-3).join(' / ')}` };
  }
  return { value: JSON.parse(line.slice(RESULT_MARKER.length)) as T };
}

/** Prints a child's one result line. */
export function printResult(result: unknown): void {
  process.stdout.write(`${RESULT_MARKER}${JSON.stringify(result)}\n`);
}

/** Runs a child script's `main`, then exits: 0 once it resolved, 1 (stack on stderr) if it threw. */
export function runAsChild(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
