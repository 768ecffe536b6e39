import { WalguardError } from '../errors.js';

/**
 * The writer's active interactive transaction when it is `txId`; otherwise `TX_TIMEOUT`
 * (it timed out and was rolled back, or it already ended). Shared by every engine's writer.
 */
export function requireActiveTx<T extends { txId: number }>(
  active: T | undefined,
  txId: number,
): T {
  if (active === undefined || active.txId !== txId) {
    throw new WalguardError(
      'TX_TIMEOUT',
      'The transaction is no longer active: it timed out and was rolled back, or it already ended',
    );
  }
  return active;
}
