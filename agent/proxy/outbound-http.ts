// Outbound L7: an app's HTTP requests to an upstream's local port. Per request: the Route's first
// matching rule picks a weighted subset, the balancer an instance of it, and a pooled keep-alive
// connection to that instance's agent (a stream of the multiplexed mTLS session) carries it. Failures are retried per the
// Route's policy, within the retry budget; the circuit breaker and the deadline answer for
// themselves with 503/504 and a reason in `x-hostmesh-error`.
//
// The bytes are forwarded, not re-created: see http1/connection-loop.ts for the loop,
// http1/outbound-session.ts for routing and retries, http1/mesh-pool.ts for the connections.
import type net from 'node:net';
import type { Logger } from '../../shared/log.js';
import type { Observability } from '../observability/index.js';
import { MeshPool } from './http1/mesh-pool.js';
import { OutboundSession } from './http1/outbound-session.js';
import type { OutboundSessions, Waiter } from './http1/outbound-sessions.js';
import { closeIdleSessions } from './http1/drain.js';
import type { ProxyMetrics } from './metrics.js';
import type { MuxPool } from './mux/pool.js';
import type { TlsMaterial } from './tls-material.js';
import type { UpstreamState } from './upstream.js';

export class OutboundHttp implements OutboundSessions {
  readonly pool: MeshPool;
  private readonly sessions = new Set<OutboundSession>();
  private readonly waiters = new Map<UpstreamState, Waiter[]>();

  constructor(
    readonly upstream: (service: string) => UpstreamState | undefined,
    mux: MuxPool,
    material: TlsMaterial,
    readonly source: () => string,
    readonly metrics: ProxyMetrics,
    readonly log: Logger,
    readonly obs: Observability | null = null,
  ) {
    this.pool = new MeshPool(mux, material);
  }

  accept(service: string, socket: net.Socket): void {
    this.metrics.connGroup('outbound', service, 'http')?.track(socket);
    this.sessions.add(new OutboundSession(this, service, socket));
  }

  /** Close the connections that are between requests; true when none is left. */
  closeIdle(): boolean {
    return closeIdleSessions(this.sessions);
  }

  close(): void {
    for (const s of this.sessions) s.teardown();
    this.sessions.clear();
    this.waiters.clear();
    this.pool.close();
  }

  enqueue(up: UpstreamState, w: Waiter): void {
    let q = this.waiters.get(up);
    if (q === undefined) this.waiters.set(up, (q = []));
    q.push(w);
  }

  wakeOne(up: UpstreamState): void {
    const q = this.waiters.get(up);
    if (q === undefined) return;
    while (q.length > 0) if ((q.shift() as Waiter).wake()) return;
  }

  forget(session: object): void {
    this.sessions.delete(session as OutboundSession);
  }
}
