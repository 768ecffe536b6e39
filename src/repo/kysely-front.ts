/**
 * The Kysely instances an open database hands out: `db.kysely`, `db.dialect`, the instance
 * `db.transaction()` runs on, and the dialect migrations run on. All of them route reads to
 * the reader and writes to the one write queue; they differ in how a transaction takes its
 * place in submission order and how long it may live.
 *
 * A transaction begun on `db.kysely` directly takes its place when it reaches the driver.
 * One begun by `db.transaction()` takes the ticket of that call: the call leaves a claim,
 * and since Kysely's path from `.execute()` to the driver is the same for every transaction,
 * they arrive in call order and the oldest unused claim is the arriving one's. No
 * AsyncLocalStorage: on Node 20, running one turns on promise hooks for the whole process,
 * and measured here every later write was 10-35% slower.
 */
import type { Kysely, LogConfig, RootOperationNode, Transaction } from 'kysely';
import type { InteractiveTransaction } from '../tx/interactive-transaction.js';
import type { QueryBackend } from './query-backend.js';
import { MigrationLocks } from './walguard-adapter.js';
import { type Engine, WalguardDialect } from './walguard-dialect.js';
import { type RouterPool, walguardKysely } from './walguard-executor.js';

/** Begins an interactive transaction at `ticket` (0: on arrival), bounded by `timeoutMs`. */
export type BeginAt = (ticket: number, timeoutMs?: number) => Promise<InteractiveTransaction>;

/** The Kysely side of an open database. */
export interface KyselyFront<DB> {
  /** `db.kysely`. */
  kysely: Kysely<DB>;
  /** `db.dialect`, for apps that build their own `Kysely`. */
  dialect: WalguardDialect;
  /** The routers `kysely` hands to transactions and `connection()`. */
  routers: RouterPool;
  /** The dialect migrations run on: its transactions are bounded by `migrationTimeoutMs`. */
  migrationDialect: WalguardDialect;
  /** Runs `fn` as a transaction that keeps the place of `ticket` in submission order. */
  transaction<T>(ticket: number, fn: (trx: Transaction<DB>) => Promise<T>): Promise<T>;
}

/** Builds the Kysely side on `backend`; `stamp` records each compiled query's ticket. */
export function buildKyselyFront<DB>(
  backend: Omit<QueryBackend, 'beginTransaction'>,
  beginAt: BeginAt,
  stamp: (node: RootOperationNode, queryId: object) => void,
  migrationTimeoutMs: number,
  log?: LogConfig,
  engine: Engine = 'sqlite',
): KyselyFront<DB> {
  const plain: QueryBackend = { ...backend, beginTransaction: () => beginAt(0) };
  /** Tickets of `transaction()` calls whose transaction has not reached the driver yet, oldest first. */
  const claims: { ticket: number; used: boolean }[] = [];
  const claiming: QueryBackend = {
    ...backend,
    beginTransaction: () => {
      const claim = claims.shift();
      if (claim === undefined) return beginAt(0);
      claim.used = true;
      return beginAt(claim.ticket);
    },
  };
  const locks = new MigrationLocks();
  const txKysely = walguardKysely<DB>(
    new WalguardDialect(claiming, locks, engine),
    claiming,
    stamp,
    log,
  ).kysely;
  const dialect = new WalguardDialect(plain, locks, engine);
  const front = walguardKysely<DB>(dialect, plain, stamp, log);
  return {
    kysely: front.kysely,
    dialect,
    routers: front.pool,
    migrationDialect: new WalguardDialect(
      { ...backend, beginTransaction: () => beginAt(0, migrationTimeoutMs) },
      locks,
      engine,
    ),
    transaction(ticket, fn) {
      const claim = { ticket, used: false };
      claims.push(claim);
      return txKysely
        .transaction()
        .execute(fn)
        .finally(() => {
          // Failed before reaching the driver (closed): withdraw the claim.
          if (!claim.used) claims.splice(claims.indexOf(claim), 1);
        });
    },
  };
}
