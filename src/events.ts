/** The events of an open database (`db.on(…)`), their payloads, and the typed emitter. */
import { EventEmitter } from 'node:events';
import type { CheckpointEvent } from './durability/checkpointer.js';
import type { BatchInfo } from './queue/write-queue.js';

export type { CheckpointEvent } from './durability/checkpointer.js';

/** Payload of the `commit` event. */
export type CommitEvent = BatchInfo;

/** The events of `Walguard`. */
export interface WalguardEvents {
  /** A deferred unit failed, or a batch failed as a whole. Never thrown when no one listens. */
  error: [error: Error];
  /** A batch committed (or failed: `error` is set). */
  commit: [event: CommitEvent];
  /** A checkpoint ran. */
  checkpoint: [event: CheckpointEvent];
  /** A backup was written. */
  backup: [event: { path: string; bytes: number; durationMs: number }];
}

type Listener<A extends unknown[]> = (...args: A) => void;

/** `on`/`once`/`off` typed by an event map; `emit` is for the subclass. */
export class TypedEvents<E extends { [K in keyof E]: unknown[] }> {
  readonly #emitter = new EventEmitter();

  /** Adds a listener. */
  on<K extends keyof E & string>(event: K, listener: Listener<E[K]>): this {
    this.#emitter.on(event, listener as Listener<unknown[]>);
    return this;
  }

  /** Adds a listener that runs once. */
  once<K extends keyof E & string>(event: K, listener: Listener<E[K]>): this {
    this.#emitter.once(event, listener as Listener<unknown[]>);
    return this;
  }

  /** Removes a listener. */
  off<K extends keyof E & string>(event: K, listener: Listener<E[K]>): this {
    this.#emitter.off(event, listener as Listener<unknown[]>);
    return this;
  }

  /** Calls the listeners of `event`, if any (an `error` with no listener is not thrown). */
  protected emit<K extends keyof E & string>(event: K, ...args: E[K]): void {
    if (this.#emitter.listenerCount(event) > 0) this.#emitter.emit(event, ...args);
  }
}
