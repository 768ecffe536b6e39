/**
 * A reader thread's entry point: opens a read connection inside a `worker_thread` and serves
 * the reads `ReaderPool` sends it (see `reader-protocol.ts`). The query code is `Reader`'s,
 * the same class the main thread uses for its cheap reads; this file only moves messages.
 *
 * Streams. A stream keeps its statement open between chunks, and an open statement keeps its
 * connection's read snapshot: every other statement on that connection would see the
 * database as it was when the stream began. So each open stream gets a connection of its
 * own (opened on first need, with every setting applied and read back, and kept for the
 * next stream: libsql 0.5.29 leaks file descriptors on close), and the thread's main
 * connection serves every other read with a fresh snapshot per statement.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { toWireError } from '../errors.js';
import type { StatementResult } from '../queue/protocol.js';
import { openSqlite } from '../sqlite-types.js';
import { MUST_WRITE, Reader } from './reader.js';
import type {
  ReaderInit,
  ReaderReady,
  ReaderReply,
  ReaderRequest,
  WireRead,
  WireReadResult,
} from './reader-protocol.js';
import { toWireRows } from './wire-rows.js';

const port = parentPort!;
const init = workerData as ReaderInit;
lowerPriority(init.nice);
const post = (message: ReaderReply | ReaderReady) => port.postMessage(message);

/** Opens one more connection with every setting applied and read back. */
const openReader = async (): Promise<Reader> => {
  const db = await openSqlite(init.path, {
    readOnly: true,
    ...(init.encryptionKey === undefined ? {} : { encryptionKey: init.encryptionKey }),
  });
  return new Reader(db, init.settings);
};

// Wait for the go-ahead: the thread loads its code while the writer starts, and opens its
// connection once the file is in WAL mode.
await new Promise((resolve) => port.once('message', resolve));
let reader: Reader;
try {
  reader = await openReader();
  post({ type: 'ready', settings: reader.settings });
} catch (error) {
  post({ type: 'open-failed', error: toWireError(error) });
  port.close();
  process.exit(0);
}

/**
 * Lowers this thread's CPU priority to `nice` (Linux: each thread has its own nice value,
 * set through its thread id). A reader thread then gets the CPU the main thread and the
 * writer leave over, so a heavy read slows neither acknowledgements nor the event loop on a
 * busy machine. Elsewhere, or when refused, the thread keeps its priority.
 */
function lowerPriority(nice: number): void {
  if (nice <= 0 || process.platform !== 'linux') return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isSafeInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    // Best effort: the thread works the same at its inherited priority.
  }
}

/** A stream in progress: its own connection, and the chunks still to come. */
interface OpenStream {
  reader: Reader;
  chunks: Generator<StatementResult>;
}

/** Streams in progress, by id. */
const streams = new Map<number, OpenStream>();
/** Stream connections not in use now. */
const idleStreamReaders: Reader[] = [];

function runRead(read: WireRead): WireReadResult {
  const started = performance.now();
  try {
    if (read.mode === 'raw') {
      const values = reader.rawRows(read.sql);
      return { id: read.id, ms: performance.now() - started, rows: { columns: [], values } };
    }
    const result =
      read.mode === 'try'
        ? reader.tryQuery(read.sql, read.params)
        : reader.query(read.sql, read.params);
    return { id: read.id, ms: performance.now() - started, rows: toWireRows(result.rows) };
  } catch (error) {
    const ms = performance.now() - started;
    if (error === MUST_WRITE) return { id: read.id, ms, mustWrite: true };
    return { id: read.id, ms, error: toWireError(error) };
  }
}

/** Replies with the stream's next chunk; a finished or failed stream frees its connection. */
function nextChunk(id: number, streamId: number): void {
  const stream = streams.get(streamId);
  if (stream === undefined) {
    post({ type: 'chunk', id, done: true });
    return;
  }
  let step: IteratorResult<StatementResult>;
  try {
    step = stream.chunks.next();
  } catch (error) {
    // A statement that failed midway may still hold its snapshot: drop its connection.
    const failed = streams.get(streamId);
    streams.delete(streamId);
    if (failed !== undefined) closeQuietly(failed.reader);
    post({ type: 'chunk', id, done: true, error: toWireError(error) });
    return;
  }
  if (step.done) {
    endStream(streamId);
    post({ type: 'chunk', id, done: true });
    return;
  }
  post({ type: 'chunk', id, rows: toWireRows(step.value.rows), done: false });
}

/** Ends a stream (its statement, and with it its snapshot) and keeps its connection for reuse. */
function endStream(streamId: number): void {
  const stream = streams.get(streamId);
  if (stream === undefined) return;
  streams.delete(streamId);
  try {
    stream.chunks.return(undefined);
    idleStreamReaders.push(stream.reader);
  } catch {
    // A statement that cannot be ended would keep its snapshot: never reuse that connection.
    closeQuietly(stream.reader);
  }
}

function closeQuietly(r: Reader): void {
  try {
    r.close();
  } catch {
    // Closing is best effort once the thread is going away.
  }
}

port.on('message', async (request: ReaderRequest) => {
  switch (request.op) {
    case 'reads': {
      const results = new Array<WireReadResult>(request.reads.length);
      for (let i = 0; i < request.reads.length; i++) results[i] = runRead(request.reads[i]!);
      post({ type: 'reads', results });
      return;
    }
    case 'stream-open': {
      let own: Reader;
      try {
        own = idleStreamReaders.pop() ?? (await openReader());
        streams.set(request.streamId, {
          reader: own,
          chunks: own.stream(request.sql, request.params, request.chunkSize),
        });
      } catch (error) {
        post({ type: 'chunk', id: request.id, done: true, error: toWireError(error) });
        return;
      }
      nextChunk(request.id, request.streamId);
      return;
    }
    case 'stream-next':
      nextChunk(request.id, request.streamId);
      return;
    case 'stream-close':
      endStream(request.streamId);
      return;
    case 'open':
      return;
    case 'close':
      for (const streamId of [...streams.keys()]) endStream(streamId);
      for (const r of idleStreamReaders.splice(0)) closeQuietly(r);
      closeQuietly(reader);
      post({ type: 'closed' });
      port.close();
      return;
  }
});
