/**
 * Starting walguard's worker threads (the writer, the readers) from the built JavaScript.
 *
 * When walguard runs from its TypeScript sources (tests, benchmarks), a worker starts from the
 * built twin of its entry (`dist/…/<name>.js`) when `dist/` is at least as new as every file
 * under `src/` — `npm test` builds first — and otherwise through a tiny bootstrap that
 * registers tsx (a dev dependency) first: Node 20 workers do not inherit the parent's module
 * hooks. Measured here (2026-12-05, 2 cores): a worker booted through tsx cost about 1 s of
 * CPU (tsx's loader thread, then transpiling the worker's modules) against about 0.1 s from
 * `dist/`; with a writer and a reader per `openDatabase`, that was half of `npm test`'s CPU.
 * The worker's code is then exactly what the package ships, and it speaks to the sources'
 * main thread through the same message protocol (plain structured-cloned objects).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts the worker whose entry module is `name` (without extension) in the folder of
 * `callerUrl` (the caller's `import.meta.url`), with `workerData`.
 */
export function spawnWorker(name: string, callerUrl: string, workerData: unknown): Worker {
  const entry = new URL(`./${name}.js`, callerUrl);
  if (!callerUrl.endsWith('.ts')) return new Worker(entry, { workerData });
  const built = builtTwin(name, callerUrl);
  if (built !== undefined) return new Worker(built, { workerData });
  const tsEntry = new URL(`./${name}.ts`, callerUrl).href;
  // The ESM build of tsx's API sits beside the CommonJS one that require.resolve finds.
  const tsxApi = createRequire(callerUrl)
    .resolve('tsx/esm/api')
    .replace(/\.cjs$/, '.mjs');
  const tsx = pathToFileURL(tsxApi).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(tsEntry)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/** The worker's first message (its `ready` or `open-failed`); rejects if it fails or exits first. */
export function firstMessage<T>(worker: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    const onExit = (code: number) => reject(new Error(`The worker exited (code ${code})`));
    worker.once('error', onError);
    worker.once('exit', onExit);
    worker.once('message', (message: T) => {
      worker.off('error', onError);
      worker.off('exit', onExit);
      resolve(message);
    });
  });
}

/** Newest modification time (ms) of the `.ts` files under each source folder, by folder. */
const newestSourceByRoot = new Map<string, number>();

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

/**
 * The built twin of worker entry `name` beside source file `callerUrl` (`src/a/b.ts` →
 * `dist/a/<name>.js`), when it exists and is not older than any source file; else undefined.
 * The sources' age is read once per process (a test run does not edit them).
 */
export function builtTwin(name: string, callerUrl: string): URL | undefined {
  const file = fileURLToPath(callerUrl);
  const at = file.lastIndexOf(`${path.sep}src${path.sep}`);
  if (at < 0) return undefined;
  const root = file.slice(0, at);
  const srcDir = path.join(root, 'src');
  const twin = path.join(root, 'dist', path.dirname(file.slice(at + 5)), `${name}.js`);
  try {
    let newest = newestSourceByRoot.get(srcDir);
    if (newest === undefined) {
      newest = newestSource(srcDir);
      newestSourceByRoot.set(srcDir, newest);
    }
    return fs.statSync(twin).mtimeMs >= newest ? pathToFileURL(twin) : undefined;
  } catch {
    return undefined;
  }
}
