/**
 * The query executor behind `db.kysely`: Kysely's own `DefaultQueryExecutor` with two changes
 * that take most of Kysely's per-query overhead off walguard's write path.
 *
 * - **Routing without a connection round trip.** Kysely's default path acquires a
 *   connection through `RuntimeDriver` and `DefaultConnectionProvider`, runs the query, runs
 *   every plugin's `transformResult`, and releases the connection: about ten awaited promises
 *   per query. Outside a transaction a walguard connection is a stateless router (reads to
 *   the reader, writes to the queue), so a query without plugins goes straight to one shared
 *   router. Measured on the 256-caller insert benchmark: main-thread time per insert
 *   11.5 → 7 µs (see the commit that added this file).
 * - **Submission tickets at compile time.** `compileQuery` takes the query's ticket (see
 *   `submission-order.ts`) itself, so `db.kysely` needs no plugin, whose async
 *   `transformResult` would cost another await per query.
 *
 * Everything else stays Kysely's: transactions and `connection()` still acquire a router of
 * their own from `RouterPool` (a transaction's router holds its state), and an executor with
 * plugins (`db.kysely.withPlugin(new CamelCasePlugin())`) takes Kysely's full path so that
 * every plugin transforms its results.
 */
import {
  type CompiledQuery,
  type ConnectionProvider,
  type DatabaseConnection,
  DefaultQueryExecutor,
  type DialectAdapter,
  Kysely,
  type KyselyPlugin,
  Log,
  type LogConfig,
  type QueryCompiler,
  type QueryId,
  type QueryResult,
  type RootOperationNode,
} from 'kysely';
import type { QueryBackend } from './query-backend.js';
import { addQueryLog } from './query-log.js';
import { WalguardConnection } from './walguard-connection.js';
import type { WalguardDialect } from './walguard-dialect.js';

/** Records a compiled query's submission ticket. */
export type Stamp = (node: RootOperationNode, queryId: QueryId) => void;

/**
 * Hands each `provideConnection` a router of its own, and takes it back afterwards. Routers
 * are reused: their number is bounded by the peak number of transactions and connections
 * open at once.
 */
export class RouterPool implements ConnectionProvider {
  readonly #backend: QueryBackend;
  readonly #free: WalguardConnection[] = [];
  /** Kysely's query log for the routers, if any (see `query-log.ts`). */
  readonly #log: Log | undefined;
  /** Routers created so far (for tests: bounded by peak concurrency). */
  created = 0;

  constructor(backend: QueryBackend, log?: Log) {
    this.#backend = backend;
    this.#log = log;
  }

  /** A released router, or a new one. */
  acquire(): WalguardConnection {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    this.created++;
    return this.router();
  }

  /** A new router (logging queries when the pool has a log). */
  router(): WalguardConnection {
    const router = new WalguardConnection(this.#backend);
    return this.#log === undefined ? router : addQueryLog(router, this.#log);
  }

  /** Takes a router back (its transaction, if any, has ended by now). */
  release(router: WalguardConnection): void {
    this.#free.push(router);
  }

  async provideConnection<T>(consumer: (connection: DatabaseConnection) => Promise<T>): Promise<T> {
    const router = this.acquire();
    try {
      return await consumer(router);
    } finally {
      this.release(router);
    }
  }
}

interface ExecutorParts {
  compiler: QueryCompiler;
  adapter: DialectAdapter;
  stamp: Stamp;
  /** The router for plugin-less queries outside a transaction; none below a transaction. */
  direct: WalguardConnection | undefined;
}

export class WalguardExecutor extends DefaultQueryExecutor {
  readonly #parts: ExecutorParts;
  readonly #provider: ConnectionProvider;

  constructor(parts: ExecutorParts, provider: ConnectionProvider, plugins: KyselyPlugin[] = []) {
    super(parts.compiler, parts.adapter, provider, plugins);
    this.#parts = parts;
    this.#provider = provider;
  }

  override compileQuery(node: RootOperationNode, queryId: QueryId): CompiledQuery {
    this.#parts.stamp(node, queryId);
    return super.compileQuery(node, queryId);
  }

  override executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const direct = this.#parts.direct;
    if (direct !== undefined && this.plugins.length === 0) {
      return direct.executeQuery<R>(compiledQuery);
    }
    return super.executeQuery<R>(compiledQuery);
  }

  override withPlugins(plugins: ReadonlyArray<KyselyPlugin>): WalguardExecutor {
    return new WalguardExecutor(this.#parts, this.#provider, [...this.plugins, ...plugins]);
  }

  override withPlugin(plugin: KyselyPlugin): WalguardExecutor {
    return new WalguardExecutor(this.#parts, this.#provider, [...this.plugins, plugin]);
  }

  override withPluginAtFront(plugin: KyselyPlugin): WalguardExecutor {
    return new WalguardExecutor(this.#parts, this.#provider, [plugin, ...this.plugins]);
  }

  override withConnectionProvider(provider: ConnectionProvider): WalguardExecutor {
    // Below a transaction or `connection()`: every query goes to that connection.
    return new WalguardExecutor({ ...this.#parts, direct: undefined }, provider, [...this.plugins]);
  }

  override withoutPlugins(): WalguardExecutor {
    return new WalguardExecutor(this.#parts, this.#provider, []);
  }
}

/** A `Kysely<DB>` on `dialect` with walguard's executor, and its pool of routers. */
export function walguardKysely<DB>(
  dialect: WalguardDialect,
  backend: QueryBackend,
  stamp: Stamp,
  log?: LogConfig,
): { kysely: Kysely<DB>; pool: RouterPool } {
  const pool = new RouterPool(backend, log === undefined ? undefined : new Log(log));
  const executor = new WalguardExecutor(
    {
      compiler: dialect.createQueryCompiler(),
      adapter: dialect.createAdapter(),
      stamp,
      direct: pool.router(),
    },
    pool,
  );
  const kysely = new Kysely<DB>({
    config: log === undefined ? { dialect } : { dialect, log },
    dialect,
    // Transactions call the driver's begin/commit/rollback; it holds no connections itself.
    driver: dialect.createDriver(),
    executor,
  });
  return { kysely, pool };
}
