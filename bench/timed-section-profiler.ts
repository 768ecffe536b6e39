/**
 * Profiles the main thread over one section of code only, through `node:inspector`, so that
 * a trial's profile shows its timed section and not startup or module loading.
 */
import fs from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

export class TimedSectionProfiler {
  readonly #session: Session;
  readonly #file: string;

  private constructor(session: Session, file: string) {
    this.#session = session;
    this.#file = file;
  }

  /** Starts profiling when `dir` is set; resolves to `undefined` otherwise. */
  static async start(
    dir: string | undefined,
    label: string,
  ): Promise<TimedSectionProfiler | undefined> {
    if (dir === undefined || dir === '') return undefined;
    fs.mkdirSync(dir, { recursive: true });
    const session = new Session();
    session.connect();
    const profiler = new TimedSectionProfiler(session, path.join(dir, `${label}-main.cpuprofile`));
    await profiler.#post('Profiler.enable');
    await profiler.#post('Profiler.setSamplingInterval', { interval: 100 });
    await profiler.#post('Profiler.start');
    return profiler;
  }

  /** Stops profiling and writes the profile. */
  async stop(): Promise<void> {
    const { profile } = (await this.#post('Profiler.stop')) as { profile: unknown };
    fs.writeFileSync(this.#file, JSON.stringify(profile));
    this.#session.disconnect();
  }

  #post(method: string, params?: object): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#session.post(method, params ?? {}, (error, result) =>
        error ? reject(error) : resolve(result),
      );
    });
  }
}
