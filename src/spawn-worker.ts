/**
 * Starting walguard's worker threads (the writer, the readers) from the built JavaScript, or —
 * when walguard runs from its TypeScript sources (tests, benchmarks) — through a tiny
 * bootstrap that registers tsx (a dev dependency) first: Node 20 workers do not inherit the
 * parent's module hooks.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts the worker whose entry module is `name` (without extension) in the folder of
 * `callerUrl` (the caller's `import.meta.url`), with `workerData`.
 */
export function spawnWorker(name: string, callerUrl: string, workerData: unknown): Worker {
  const entry = new URL(`./${name}.js`, callerUrl);
  if (!callerUrl.endsWith('.ts')) return new Worker(entry, { workerData });
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
