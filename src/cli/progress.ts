/**
 * Progress for long checks and copies, on stderr.
 *
 * On a terminal a bar is redrawn in place (at most 10 times a second); with `--progress` on
 * something that is not a terminal (a log file, CI), one line is printed every few seconds
 * and at the end. Off by default when stderr is not a terminal, and with `--no-progress`.
 *
 * Where the numbers come from: copies are measured by the size of the file being written
 * (the backup's temporary file, the restore's temporary copy); checks and VACUUM by the
 * bytes the SQLite child has read (`rchar` in `/proc/<pid>/io`, Linux only) against the size
 * of the database and its WAL. An integrity check reads some pages more than once, so that
 * estimate is capped at 99% until the check ends. Where no total is known (VACUUM writing its
 * new file) no percentage is made up: the line names the phase and counts what was done.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { formatBytes, formatDuration } from './format.js';

/** Where progress is written. */
export interface ProgressStream {
  write(text: string): unknown;
  /** True on a terminal. */
  isTTY?: boolean;
  /** Terminal width. */
  columns?: number;
}

/** Reads how far a piece of work is: `[done, total]` in bytes, total unknown as undefined. */
export type ProgressProbe = () => [number, number | undefined] | undefined;

/** One progress bar for one phase of a command. */
export class Progress {
  readonly #stream: ProgressStream;
  readonly #enabled: boolean;
  readonly #started = Date.now();
  #label: string;
  #timer: NodeJS.Timeout | undefined;
  #lastLine = 0;
  #drawn = false;
  /** What a count without a total measures (`written`), shown after the amount. */
  #noun: string | undefined;

  constructor(stream: ProgressStream, label: string, enabled: boolean) {
    this.#stream = stream;
    this.#label = label;
    this.#enabled = enabled;
  }

  /** Polls `probe` and redraws until `stop()`. */
  watch(probe: ProgressProbe, cap = 1): void {
    if (!this.#enabled) return;
    this.#stopTimer();
    const interval = this.#stream.isTTY ? 100 : 250;
    this.#timer = setInterval(() => {
      const reading = safely(probe);
      this.#draw(reading?.[0], reading?.[1], cap);
    }, interval);
    this.#timer.unref();
  }

  /**
   * Starts a new phase (e.g. "verifying" after "copying"). `noun` names what a probe without
   * a total counts (`written`: "12.0 MiB written"). Off a terminal the phase's first reading
   * is printed at once, not at the next 2 s mark.
   */
  phase(label: string, probe?: ProgressProbe, cap = 1, noun?: string): void {
    if (!this.#enabled) return;
    this.#label = label;
    this.#noun = noun;
    this.#drawn = false;
    // Without a probe the bar still ticks, showing the elapsed time.
    this.watch(probe ?? (() => undefined), cap);
  }

  /** Ends the bar with a final line, under the current phase's label or `label`. */
  stop(note = 'done', label = this.#label): void {
    this.#stopTimer();
    if (!this.#enabled) return;
    const line = `${label}: ${note} in ${formatDuration(Date.now() - this.#started)}`;
    this.#stream.write(this.#stream.isTTY ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #draw(done: number | undefined, total: number | undefined, cap: number): void {
    const elapsed = formatDuration(Date.now() - this.#started);
    let text: string;
    if (done !== undefined && total !== undefined && total > 0) {
      const fraction = Math.min(done / total, cap);
      const width = 24;
      const filled = Math.round(fraction * width);
      text = `${this.#label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(
        fraction * 100,
      )}% ${formatBytes(Math.min(done, total))} of ${formatBytes(total)}, ${elapsed}`;
    } else if (done !== undefined && this.#noun !== undefined) {
      text = `${this.#label}… ${formatBytes(done)} ${this.#noun}, ${elapsed}`;
    } else {
      text = `${this.#label}… ${elapsed}`;
    }
    if (this.#stream.isTTY) {
      const columns = this.#stream.columns || 80;
      this.#stream.write(`\r\x1b[2K${text.slice(0, columns - 1)}`);
      this.#drawn = true;
    } else if (Date.now() - this.#lastLine >= 2000 || !this.#drawn) {
      this.#stream.write(`${text}\n`);
      this.#lastLine = Date.now();
      this.#drawn = true;
    }
  }
}

function safely(probe: ProgressProbe): [number, number | undefined] | undefined {
  try {
    return probe();
  } catch {
    return undefined;
  }
}

/** A counter of `/proc/<pid>/io` (Linux): `rchar` bytes read, `wchar` written; else undefined. */
function ioCounter(pid: number, field: 'rchar' | 'wchar'): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s*(\\d+)`, 'm').exec(
      readFileSync(`/proc/${pid}/io`, 'utf8'),
    );
    return match === null ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

/** A probe of what a child process has read since now, against `total` bytes. */
export function readProbe(pid: number, total: number): ProgressProbe {
  return counterProbe(() => ioCounter(pid, 'rchar'), total);
}

/** A probe of what a child process has written since now; no total. */
export function writeProbe(pid: number): ProgressProbe {
  return counterProbe(() => ioCounter(pid, 'wchar'), undefined);
}

function counterProbe(read: () => number | undefined, total: number | undefined): ProgressProbe {
  const baseline = read() ?? 0;
  return () => {
    const now = read();
    return now === undefined ? undefined : [now - baseline, total];
  };
}

/** A probe of the size of the file in `dir` whose name ends with `suffix`, against `total`. */
export function fileSizeProbe(dir: string, suffix: string, total: number): ProgressProbe {
  return () => {
    const name = readdirSync(dir).find((n) => n.endsWith(suffix));
    return name === undefined ? [0, total] : [statSync(path.join(dir, name)).size, total];
  };
}
