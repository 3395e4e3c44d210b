// What inbound sessions share: the local connection pool, metrics, and the current local services.
import type { LocalService } from '../inbound.js';
import type { Observability } from '../../observability/index.js';
import type { ProxyMetrics } from '../metrics.js';
import type { LocalPool } from './local-pool.js';

export interface InboundSessions {
  readonly pool: LocalPool;
  readonly metrics: ProxyMetrics;
  /** Access log and tracer; null where a test builds sessions without them. */
  readonly obs: Observability | null;
  /** The service as configured now (its access policy may have changed since the handshake). */
  currentService(svc: LocalService): LocalService;
  forget(session: object): void;
}
