/**
 * Opening walguard's PostgreSQL connections, with every setting applied and read back
 * (contract line 7, as on SQLite): the writer's session settings, the reader pool's
 * read-only sessions, and the checks that the server can keep walguard's promises.
 */
import pg from 'pg';
import { WalguardError } from '../errors.js';
import type { PgSettingsReadBack } from './pg-settings.js';
import { pgTypes } from './pg-types.js';

export type { PgSettingsReadBack } from './pg-settings.js';

/** Oldest server walguard runs on: `pg_current_xact_id()` and `pg_xact_status()` are 13+. */
const MIN_SERVER_VERSION = 130000;

/** How long one connection attempt may take, in ms. */
export const CONNECT_TIMEOUT_MS = 5000;

/** Connection options of every walguard `pg` client and pool. */
export function clientConfig(url: string, applicationName: string): pg.ClientConfig {
  return {
    connectionString: url,
    types: pgTypes,
    application_name: applicationName,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  };
}

/** The URL with its password removed, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

const READ_BACK = `SELECT current_setting('server_version_num')::int AS version,
  current_setting('server_version') AS server_version,
  current_setting('synchronous_commit') AS synchronous_commit,
  current_setting('synchronous_standby_names') AS synchronous_standby_names,
  current_setting('lock_timeout') AS lock_timeout,
  current_setting('default_transaction_isolation') AS default_transaction_isolation,
  current_setting('default_transaction_read_only') AS default_transaction_read_only,
  pg_is_in_recovery() AS standby`;

/**
 * Applies the session settings of a writer (or, `readOnly`, a reader) connection and reads
 * them back; a value that did not apply, an old server or a standby fails with
 * `INVALID_OPTION`.
 */
export async function applySessionSettings(
  client: pg.Client | pg.PoolClient,
  busyTimeoutMs: number,
  readOnly: boolean,
): Promise<PgSettingsReadBack> {
  // `synchronous_commit` is kept when the server (or role) already asks for more than a
  // local flush (remote_write, remote_apply): walguard never weakens it, only raises `off`.
  const current = await client.query<{ s: string }>(
    "SELECT current_setting('synchronous_commit') AS s",
  );
  const durable = current.rows[0]?.s === 'off' ? 'on' : current.rows[0]!.s;
  await client.query(
    `SET synchronous_commit = ${pgLiteral(durable)}; SET lock_timeout = ${Math.trunc(busyTimeoutMs)}; SET default_transaction_isolation = 'read committed'; SET default_transaction_read_only = ${readOnly ? 'on' : 'off'}`,
  );
  return readBackSettings(client, readOnly);
}

/** Reads a session's settings back and checks them (see `applySessionSettings`). */
export async function readBackSettings(
  client: pg.Client | pg.PoolClient,
  readOnly: boolean,
): Promise<PgSettingsReadBack> {
  const { rows } = await client.query<PgSettingsReadBack & { version: number; standby: boolean }>(
    READ_BACK,
  );
  const row = rows[0]!;
  const { version, standby, ...settings } = row;
  const problems: string[] = [];
  if (version < MIN_SERVER_VERSION) {
    problems.push(`walguard needs PostgreSQL 13 or newer; the server is ${row.server_version}`);
  }
  if (!readOnly && standby) {
    problems.push(
      'the URL points at a standby (the server is in recovery): writes need the primary',
    );
  }
  if (settings.synchronous_commit === 'off') {
    problems.push('`synchronous_commit` read back as off after walguard set it');
  }
  if (settings.default_transaction_read_only !== (readOnly ? 'on' : 'off')) {
    problems.push('`default_transaction_read_only` did not read back as set');
  }
  if (problems.length > 0) {
    throw new WalguardError('INVALID_OPTION', `PostgreSQL: ${problems.join('; ')}`, {
      details: { settings },
    });
  }
  return settings;
}

/** A setting value as an SQL string literal (values come from the server itself). */
function pgLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/** Connects a `pg` client; a failure becomes `IO_ERROR` naming the (redacted) URL. */
export async function connectClient(url: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client(clientConfig(url, applicationName));
  // Until the owner attaches its own handler, an error of an idle client must not crash.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw unreachable(url, error);
  }
  return client;
}

/** `IO_ERROR`: the server could not be reached or authenticated. */
export function unreachable(url: string, error: unknown): WalguardError {
  const reason = (error as { message?: string } | null)?.message ?? String(error);
  const code = (error as { code?: string } | null)?.code;
  // Wrong credentials or database are configuration, not I/O.
  const invalid = code === '28P01' || code === '28000' || code === '3D000';
  return new WalguardError(
    invalid ? 'INVALID_OPTION' : 'IO_ERROR',
    `Cannot connect to PostgreSQL at ${redactUrl(url)}: ${reason}`,
    { cause: error },
  );
}
