/**
 * Opening a walguard database on PostgreSQL (`openDatabase({ url })`): the writer's
 * dedicated connection and the reader pool, each with its settings applied and read back.
 *
 * What the file open sequence does and this one does not, and why that is safe: no process
 * lock (several app instances may share one server database; each has its own queue, and
 * PostgreSQL serializes their transactions), no file inspection, key or integrity check
 * (the server owns its files, their encryption and their checks), no recovery from backups
 * (the server recovers itself from its WAL).
 */
import type { ResolvedOptions } from '../options.js';
import type { PgSettingsReadBack } from './pg-connection.js';
import { PgReader } from './pg-reader.js';
import { PgWriter } from './pg-writer.js';

/** The connections of an open PostgreSQL database, each with its settings verified. */
export interface OpenedPostgres {
  engine: 'postgres';
  /** The writer. */
  client: PgWriter;
  /** The reads: a pool of read-only sessions. */
  reads: PgReader;
  /** The settings as read back from the writer and from a reader session. */
  settings: { writer: PgSettingsReadBack; reader: PgSettingsReadBack };
  /** No file, no key, no recovery, no lock: see the file header. */
  encryptionKey: undefined;
  recovery: undefined;
  lock: { release(): Promise<void> };
}

/** Opens the writer, then the reader pool; the writer is closed again when the pool fails. */
export async function openPostgres(options: ResolvedOptions): Promise<OpenedPostgres> {
  const log = options.logger.child({ component: 'open' });
  const url = options.url!;
  const client = await PgWriter.open({
    url,
    busyTimeoutMs: options.busyTimeoutMs,
    transactionTimeoutMs: options.transactionTimeoutMs,
    logger: options.logger.child({ component: 'writer' }),
  });
  log.info(
    { step: 'writer', settings: client.settings },
    'writer connection open, settings verified',
  );
  let reader: PgReader;
  try {
    reader = await PgReader.open(url);
  } catch (error) {
    await client.close();
    throw error;
  }
  log.info({ step: 'reader', settings: reader.settings }, 'reader pool open, settings verified');
  return {
    engine: 'postgres',
    client,
    reads: reader,
    settings: { writer: client.settings, reader: reader.settings },
    encryptionKey: undefined,
    recovery: undefined,
    lock: { release: async () => {} },
  };
}
