/**
 * Marks: lines a workload writes to `<folder>/.walrec-mark` so that the
 * operation log says what the application had been told when each I/O
 * happened. The shim turns each write into a MARK record (the file itself
 * stays empty). Without the shim the writes land in the file, harmlessly.
 *
 * Vocabulary understood by {@link parseMarks}:
 * - `ack <id>`: unit `<id>` was acknowledged (its commit returned): it must
 *   survive any later crash.
 * - `defer <id>`: unit `<id>` was accepted as deferred: it may be lost, but if
 *   present it must be complete and in submission order.
 * - `reject <id>`: unit `<id>` failed and was reported as failed: it must be
 *   absent.
 * Any other text (e.g. `mark setup done`) is kept for reports only.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** File name of the mark channel inside the recorded folder. */
export const MARK_FILE = '.walrec-mark';

/** What the marks before a crash point say about units. */
export interface MarkedUnits {
  /** Units acknowledged, in mark order. */
  acked: number[];
  /** Units accepted as deferred, in mark order. */
  deferred: number[];
  /** Units reported failed, in mark order. */
  rejected: number[];
}

const MARK_RE = /^(ack|defer|reject) (\d+)$/;

/** Sorts mark texts into acknowledged, deferred and rejected unit ids. */
export function parseMarks(marks: Iterable<string>): MarkedUnits {
  const out: MarkedUnits = { acked: [], deferred: [], rejected: [] };
  for (const text of marks) {
    const m = MARK_RE.exec(text.trim());
    if (m === null) continue;
    const id = Number(m[2]);
    if (m[1] === 'ack') out.acked.push(id);
    else if (m[1] === 'defer') out.deferred.push(id);
    else out.rejected.push(id);
  }
  return out;
}

/** A writer for the mark channel of one folder (one write per mark). */
export class MarkWriter {
  #fd: number;

  /** Opens `<dir>/.walrec-mark` for appending. */
  constructor(dir: string) {
    this.#fd = openSync(join(dir, MARK_FILE), 'a');
  }

  /** Writes one mark; the text must not contain a newline. */
  mark(text: string): void {
    writeSync(this.#fd, `${text}\n`);
  }

  /** Closes the channel. */
  close(): void {
    closeSync(this.#fd);
  }
}
