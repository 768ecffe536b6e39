/**
 * Submission order by call time.
 *
 * `write()`, `defer()` and `transaction()` reach the queue synchronously, at call time. A
 * Kysely `.execute()` reaches it a few microtasks later: Kysely's executor awaits its way to
 * the driver. Left alone, `db.kysely.insertInto(…).execute(); db.defer(…)` would queue the
 * deferred unit first. To keep the contract's "units are applied in the order they were
 * submitted", every unit carries a ticket taken when it was *called*: `db.kysely`'s executor
 * (`walguard-executor.ts`, through `SubmissionOrderPlugin.stamp`) takes one for each query it
 * compiles (compilation runs synchronously inside `.execute()`), and the queue inserts units in ticket order. Since Kysely's hops are
 * microtasks, every unit called in one macrotask has arrived before the next macrotask, which
 * is when the queue next takes a batch (`WriteQueue` waits one `setImmediate` before taking).
 *
 * Unused tickets (reads, queries compiled and never run) cost nothing: tickets order, they do
 * not gate. A `Kysely` an app builds itself on `db.dialect` does not carry the plugin unless
 * the app adds `db.orderingPlugin`; its units then take their ticket when they arrive.
 */
import type {
  KyselyPlugin,
  PluginTransformQueryArgs,
  PluginTransformResultArgs,
  QueryResult,
  RootOperationNode,
  UnknownRow,
} from 'kysely';

/** Hands out increasing tickets. */
export class TicketCounter {
  #next = 1;

  /** The next ticket. */
  take(): number {
    return this.#next++;
  }
}

/** Records, for each query Kysely compiles, the ticket taken at that moment. */
export class SubmissionOrderPlugin implements KyselyPlugin {
  readonly #counter: TicketCounter;
  /** Tickets by Kysely query id (the id object is shared by the compiled query). */
  readonly #tickets = new WeakMap<object, number>();

  constructor(counter: TicketCounter) {
    this.#counter = counter;
  }

  transformQuery({ node, queryId }: PluginTransformQueryArgs): RootOperationNode {
    this.stamp(node, queryId);
    return node;
  }

  /** Takes a ticket for a query being compiled (reads need none). `db.kysely`'s executor calls this directly. */
  stamp(node: RootOperationNode, queryId: object): void {
    if (node.kind !== 'SelectQueryNode') this.#tickets.set(queryId, this.#counter.take());
  }

  async transformResult({ result }: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return result;
  }

  /** The ticket of a compiled query, if this plugin saw it compiled. */
  ticketOf(queryId: object | undefined): number | undefined {
    return queryId === undefined ? undefined : this.#tickets.get(queryId);
  }
}
