/**
 * The messages between the main thread's `ReaderPool` and its reader threads
 * (`reader-worker.ts`).
 *
 * Everything that crosses is plain data (structured clone). Reads travel in batches: one
 * `reads` message carries every read the pool hands a thread at once, and one `reads` reply
 * answers them all. Rows come back column-wise (names once, then one array of values per
 * row): rebuilding the row objects on the main thread cost 30% less there than
 * deserialising one object per row (1,000 rows of 3 columns: 374 vs 535 µs, measured here).
 */
import type { ConnectionSettings, SettingsReadBack } from '../durability/connection-settings.js';
import type { WireError } from '../errors.js';

/** How a read runs on the thread's `Reader`. */
export type ReadMode =
  /** `Reader.query`: a statement known to only read. */
  | 'query'
  /** `Reader.tryQuery`: may turn out to write (answered with `mustWrite`). */
  | 'try'
  /** `Reader.rawRows`: a PRAGMA or check, rows as arrays. */
  | 'raw';

/** One read sent to a reader thread. */
export interface WireRead {
  /** Request id, unique in the pool. */
  id: number;
  mode: ReadMode;
  sql: string;
  params: readonly unknown[];
}

/** Rows, column-wise. */
export interface WireRows {
  /** Column names, in order. */
  columns: string[];
  /** One array of values per row, in column order. */
  values: unknown[][];
}

/** The answer to one read. */
export interface WireReadResult {
  id: number;
  /** Time the statement took on the reader thread, in ms (the hop not included). */
  ms: number;
  /** The rows, when it succeeded. */
  rows?: WireRows;
  /** Set when the statement writes and must go to the writer (`mode: 'try'`). */
  mustWrite?: true;
  /** Set when it failed. */
  error?: WireError;
}

/** Requests from the main thread. */
export type ReaderRequest =
  /** The first message: open the connection now (the thread has loaded its code meanwhile). */
  | { op: 'open' }
  /** Runs each read in order, answered by one `reads` reply. */
  | { op: 'reads'; reads: WireRead[] }
  /** Opens a stream on a connection of its own and answers with its first chunk. */
  | {
      op: 'stream-open';
      id: number;
      streamId: number;
      sql: string;
      params: readonly unknown[];
      chunkSize: number;
    }
  /** The next chunk of an open stream. */
  | { op: 'stream-next'; id: number; streamId: number }
  /** Ends a stream early and frees its connection (no reply). */
  | { op: 'stream-close'; streamId: number }
  /** Ends every stream, closes every connection, and exits (answered by `closed`). */
  | { op: 'close' };

/** Replies and notices from a reader thread. */
export type ReaderReply =
  | { type: 'reads'; results: WireReadResult[] }
  | { type: 'chunk'; id: number; rows?: WireRows; done: boolean; error?: WireError }
  | { type: 'closed' };

/** Data a reader thread starts with. */
export interface ReaderInit {
  /** Absolute database path. */
  path: string;
  /** Encryption key, if any (never logged). */
  encryptionKey: string | undefined;
  /** Settings for every connection the thread opens (applied and read back). */
  settings: ConnectionSettings;
  /** The thread's CPU niceness (0: as inherited; Linux only). */
  nice: number;
}

/** A reader thread's first message, once its connection is open and verified. */
export type ReaderReady =
  | { type: 'ready'; settings: SettingsReadBack }
  | { type: 'open-failed'; error: WireError };
