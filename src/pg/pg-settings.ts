/**
 * The PostgreSQL settings walguard reads back, as `stats().settings` reports them. A file of
 * its own, without `pg`: the package's public types (`WalguardStats`) name it, and an app
 * type-checks them without installing `@types/pg`.
 */

/** The writer's settings as read back from its session. */
export interface PgSettingsReadBack {
  /** `server_version`, e.g. `15.14`. */
  server_version: string;
  /** The level every critical batch commits with (`on` or stronger: `remote_write`, `remote_apply`, `local`). */
  synchronous_commit: string;
  /** `synchronous_standby_names` on the server ('' = no synchronous standby). */
  synchronous_standby_names: string;
  /** `lock_timeout` (walguard's `busyTimeoutMs`). */
  lock_timeout: string;
  /** `default_transaction_isolation` (walguard's batches: `read committed`). */
  default_transaction_isolation: string;
  /** `default_transaction_read_only` (`on` for the reader pool's sessions). */
  default_transaction_read_only: string;
}
