// What outbound sessions share: the mesh connection pool, upstream state, metrics, and the queue of
// requests waiting for a connection under the circuit breaker's maxConnections.
import type { Logger } from '../../../shared/log.js';
import type { Observability } from '../../observability/index.js';
import type { ProxyMetrics } from '../metrics.js';
import type { UpstreamState } from '../upstream.js';
import type { MeshPool } from './mesh-pool.js';

export interface Waiter {
  /** Go now; false if it no longer waits (timed out, gone). */
  wake(): boolean;
}

export interface OutboundSessions {
  readonly pool: MeshPool;
  readonly metrics: ProxyMetrics;
  /** Access log and tracer; null where a test builds sessions without them. */
  readonly obs: Observability | null;
  readonly log: Logger;
  upstream(service: string): UpstreamState | undefined;
  /** This agent's calling identity, for metrics. */
  source(): string;
  enqueue(up: UpstreamState, w: Waiter): void;
  /** A request of `up` finished: let the first waiter still waiting go. */
  wakeOne(up: UpstreamState): void;
  forget(session: object): void;
}
