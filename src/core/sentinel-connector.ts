import { SentinelConnector } from 'ioredis';
import type { RedisOptions, SentinelConnectionOptions } from 'ioredis';

type ErrorEmitter = Parameters<SentinelConnector['connect']>[0];
type Stream = Awaited<ReturnType<SentinelConnector['connect']>>;

/** What ioredis rejects with once a client has ended (its `CONNECTION_CLOSED_ERROR_MSG`, not exported). */
const CONNECTION_CLOSED = 'Connection is closed.';

/** Set when the client that owns a connector is closed on purpose (`quit()`, `disconnect()`). */
export interface CloseState {
  closing: boolean;
}

/**
 * ioredis' `SentinelConnector`, made to survive a failover announced while
 * it is connecting (redis/ioredis#1683).
 *
 * With `failoverDetector`, each connection to the primary leaves
 * subscriptions to `+switch-master` on the sentinels, and the detector calls
 * the connector's `disconnect()` when one is announced. When the primary
 * dies, the client reconnects in a loop, asking the sentinels each time where
 * the primary is; they name the dead one until they have promoted a replica.
 * The promotion's announcement then reaches the detector of the lost
 * connection, and if the connector is waiting for a sentinel's answer at
 * that moment, it takes the `disconnect()` for a close of the client: it
 * gives up with "Connection is closed.", the client ends for good, and every
 * command waiting in its offline queue is rejected with that error (a
 * promise nobody expected to fail, since `maxRetriesPerRequest` is null).
 *
 * Here such a `connect` asks the sentinels again, at once (they name the new
 * primary by then), unless the client is being closed (`state.closing`).
 */
export function failoverSafeConnector(state: CloseState): NonNullable<RedisOptions['Connector']> {
  return class FailoverSafeSentinelConnector extends SentinelConnector {
    /** ioredis passes the client's options, which name the sentinels. */
    constructor(options: unknown) {
      super(options as SentinelConnectionOptions);
    }

    override async connect(emit: ErrorEmitter): Promise<Stream> {
      for (;;) {
        try {
          return await super.connect(emit);
        } catch (err) {
          if (state.closing || !(err instanceof Error) || err.message !== CONNECTION_CLOSED) throw err;
        }
      }
    }
  };
}
