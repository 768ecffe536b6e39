/**
 * Lines from standard input: the passphrase of `--passphrase-stdin` and the answer to a
 * confirmation, in that order, from one reader (a script can pipe both: "passphrase\ny\n").
 *
 * On a terminal the passphrase is read with echo off, and a confirmation is asked on stderr.
 * Standard input is only touched when a command needs it, and is released afterwards, so it
 * never keeps the process alive.
 */
import type { Readable, Writable } from 'node:stream';

/** The parts of `process.stdin` the reader uses. */
export interface InputStream extends Readable {
  /** True on a terminal. */
  isTTY?: boolean;
  /** Switches a terminal to raw mode (no echo, no line editing). */
  setRawMode?(mode: boolean): unknown;
}

/** Reads standard input one line at a time. */
export class TerminalInput {
  readonly #input: InputStream;
  readonly #prompts: Writable;
  /** Text read but not yet returned as a line. */
  #buffer = '';
  /** Set once the input has ended. */
  #ended = false;
  #started = false;
  #waiting: (() => void) | undefined;

  constructor(input: InputStream, prompts: Writable) {
    this.#input = input;
    this.#prompts = prompts;
  }

  /** True when standard input is a terminal. */
  get isTerminal(): boolean {
    return this.#input.isTTY === true;
  }

  /**
   * The next line (without its line ending), or `undefined` at the end of the input. On a
   * terminal `prompt` is shown first, and `secret` turns echo off.
   */
  async readLine(prompt?: string, secret = false): Promise<string | undefined> {
    if (this.isTerminal && prompt !== undefined) this.#prompts.write(prompt);
    const raw = this.isTerminal && secret && this.#input.setRawMode !== undefined;
    if (raw) return this.#readRaw();
    this.#start();
    for (;;) {
      const newline = this.#buffer.indexOf('\n');
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline).replace(/\r$/, '');
        this.#buffer = this.#buffer.slice(newline + 1);
        return line;
      }
      if (this.#ended) {
        if (this.#buffer === '') return undefined;
        const line = this.#buffer;
        this.#buffer = '';
        return line;
      }
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
        this.#input.resume();
      });
    }
  }

  /** Stops reading, so standard input does not keep the process alive. */
  close(): void {
    if (!this.#started) return;
    this.#input.pause();
    this.#input.removeAllListeners('data');
    this.#input.removeAllListeners('end');
    if (typeof (this.#input as { unref?: () => void }).unref === 'function') {
      (this.#input as unknown as { unref(): void }).unref();
    }
  }

  #start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#input.setEncoding('utf8');
    this.#input.on('data', (chunk: string) => {
      this.#buffer += chunk;
      this.#input.pause();
      this.#wake();
    });
    this.#input.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
    this.#input.on('error', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }

  /** Reads a line on a terminal in raw mode: nothing is echoed. */
  #readRaw(): Promise<string | undefined> {
    const input = this.#input;
    return new Promise((resolve) => {
      let line = '';
      input.setRawMode!(true);
      input.setEncoding('utf8');
      const done = (value: string | undefined) => {
        input.setRawMode!(false);
        input.removeListener('data', onData);
        input.pause();
        this.#prompts.write('\n');
        resolve(value);
      };
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') return done(line);
          if (ch === '\u0003' || ch === '\u0004') return done(undefined); // Ctrl-C, Ctrl-D
          if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
          else line += ch;
        }
      };
      input.on('data', onData);
      input.resume();
    });
  }
}
