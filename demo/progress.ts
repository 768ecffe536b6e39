/** The power-cut demo's progress display. */

/** Progress on a terminal (one rewritten line), plain lines elsewhere. */
export class Progress {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  #last = 0;
  #open = false;

  constructor(out: NodeJS.WriteStream) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  /** A new step: on a terminal it replaces the line, elsewhere it is printed as a line. */
  phase(text: string): void {
    if (this.#tty) this.#line(`${text}…`);
    else this.#out.write(`${text}\n`);
  }

  /** Progress within a step: a terminal only, at most ten times a second. */
  update(text: string): void {
    if (!this.#tty) return;
    const now = performance.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    this.#line(text);
  }

  /** Clears the progress line. */
  done(): void {
    if (this.#tty && this.#open) this.#out.write('\r\x1b[K');
    this.#open = false;
  }

  #line(text: string): void {
    this.#out.write(`\r\x1b[K${text.slice(0, (this.#out.columns || 100) - 1)}`);
    this.#open = true;
  }
}
