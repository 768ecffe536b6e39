/**
 * The writer worker's entry point: opens the writer connection inside a `worker_thread` and
 * serves requests from `WriterClient` (see `protocol.ts`). All the transaction logic lives in
 * `Writer`; this file only moves messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toWireError } from '../errors.js';
import { openSqlite } from '../sqlite-types.js';
import type { WorkerInit, WorkerMessage, WorkerReady, WorkerRequest } from './protocol.js';
import { Writer } from './writer.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (message: WorkerMessage | WorkerReady) => port.postMessage(message);

const open = () =>
  openSqlite(
    init.path,
    init.encryptionKey === undefined ? {} : { encryptionKey: init.encryptionKey },
  );

let writer: Writer;
try {
  const opened = await Writer.open(
    open,
    init.settings,
    {
      txReady: (txId) => post({ type: 'tx-ready', txId }),
      txTimedOut: (txId) => post({ type: 'tx-timeout', txId }),
      log: (level, msg, data) => post({ type: 'log', level, msg, data }),
    },
    init.transactionTimeoutMs,
  );
  writer = opened.writer;
  post({ type: 'ready', settings: opened.readBack });
} catch (error) {
  post({ type: 'open-failed', error: toWireError(error) });
  port.close();
  process.exit(0);
}

port.on('message', async (request: WorkerRequest) => {
  try {
    let value: unknown;
    switch (request.op) {
      case 'batch':
        value = await writer.runBatch(request.batch, request.durable);
        break;
      case 'tx-exec':
        value = writer.txExec(request.txId, request.statement);
        break;
      case 'tx-end':
        writer.txEnd(request.txId, request.commit);
        break;
      case 'pragma':
        value = writer.pragma(request.name);
        break;
      case 'checkpoint':
        value = writer.checkpoint(request.mode);
        break;
      case 'close':
        writer.close();
        post({ type: 'reply', id: request.id, ok: true, value: undefined });
        port.close();
        return;
    }
    post({ type: 'reply', id: request.id, ok: true, value });
  } catch (error) {
    post({ type: 'reply', id: request.id, ok: false, error: toWireError(error) });
  }
});
