/**
 * Kysely's query log for `db.kysely` and `db.transaction()`: the same events, at the same
 * points, as Kysely's own `RuntimeDriver` logs them (which walguard's executor bypasses for
 * speed, see `walguard-executor.ts`). A disabled log costs nothing: connections are wrapped
 * only when a level is on.
 */
import type { CompiledQuery, DatabaseConnection, Log, QueryResult } from 'kysely';

/** Wraps `connection`'s `executeQuery` and `streamQuery` to log each query, as Kysely does. */
export function addQueryLog<C extends DatabaseConnection>(connection: C, log: Log): C {
  if (!log.isLevelEnabled('query') && !log.isLevelEnabled('error')) return connection;
  const executeQuery = connection.executeQuery.bind(connection);
  const streamQuery = connection.streamQuery.bind(connection);
  connection.executeQuery = async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
    const started = performance.now();
    try {
      const result = await executeQuery<R>(query);
      await logQuery(log, query, started, false);
      return result;
    } catch (error) {
      await logError(log, error, query, started);
      throw error;
    }
  };
  connection.streamQuery = async function* <R>(query: CompiledQuery, chunkSize?: number) {
    const started = performance.now();
    try {
      for await (const result of streamQuery<R>(query, chunkSize)) yield result;
    } catch (error) {
      await logError(log, error, query, started);
      throw error;
    }
    await logQuery(log, query, started, true);
  };
  return connection;
}

async function logQuery(log: Log, query: CompiledQuery, started: number, isStream: boolean) {
  await log.query(() => ({
    level: 'query',
    isStream,
    query,
    queryDurationMillis: performance.now() - started,
  }));
}

async function logError(log: Log, error: unknown, query: CompiledQuery, started: number) {
  await log.error(() => ({
    level: 'error',
    error,
    query,
    queryDurationMillis: performance.now() - started,
  }));
}
