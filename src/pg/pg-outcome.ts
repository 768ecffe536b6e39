/**
 * What became of a transaction whose connection was lost: PostgreSQL keeps every
 * transaction's fate (`pg_xact_status`, 13+), so after a lost connection the writer asks a
 * fresh session instead of guessing. A transaction still `in progress` belongs to the old
 * session, which the server has not noticed is gone: it is ended (`pg_terminate_backend`,
 * allowed on one's own sessions), which rolls it back, and asked again. An id the server calls
 * "in the future" was never logged before a crash: rolled back.
 */
import { performance } from 'node:perf_hooks';
import { connectClient } from './pg-connection.js';

/** What the server did with a transaction. */
export type TxOutcome = 'committed' | 'rolled back' | 'unknown';

/** How long the writer keeps asking (a restarting server needs a few seconds), in ms. */
const OUTCOME_WINDOW_MS = 15_000;

/** The fate of transaction `xid` of the (lost) session `pid`, asked through a fresh connection. */
export async function resolveOutcome(
  url: string,
  xid: string,
  pid: number | undefined,
): Promise<TxOutcome> {
  const deadline = performance.now() + OUTCOME_WINDOW_MS;
  for (let attempt = 0; performance.now() < deadline; attempt++) {
    try {
      const client = await connectClient(url, 'walguard outcome');
      try {
        for (let i = 0; i < 20; i++) {
          let rows: { status: string | null }[];
          try {
            ({ rows } = await client.query<{ status: string | null }>(
              'SELECT pg_xact_status($1::xid8) AS status',
              [xid],
            ));
          } catch (error) {
            // "transaction ID … is in the future": a server that crashed and recovered never
            // logged the transaction at all, so it cannot have committed.
            if ((error as { code?: string }).code === '22023') return 'rolled back';
            throw error;
          }
          const status = rows[0]?.status;
          if (status === 'committed') return 'committed';
          if (status === 'aborted') return 'rolled back';
          if (status !== 'in progress') return 'unknown';
          if (pid !== undefined) {
            await client.query('SELECT pg_terminate_backend($1)', [pid]);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        return 'unknown';
      } finally {
        await client.end().catch(() => {});
      }
    } catch {
      await new Promise((r) => setTimeout(r, Math.min(1000, 100 * 2 ** attempt)));
    }
  }
  return 'unknown';
}
