// Inbound L7: requests arriving on an authenticated mTLS connection are checked one by one against
// the service's access policy, on the path normalized once; the local instance receives exactly
// that path, without any identity header the caller sent, and with the caller's verified identity.
//
// The bytes are forwarded, not re-created: see http1/connection-loop.ts for the loop and
// http1/inbound-session.ts for the per-request decisions.
import type tls from 'node:tls';
import type { Logger } from '../../shared/log.js';
import type { Observability } from '../observability/index.js';
import type { LocalService, PeerInfo } from './inbound.js';
import { closeIdleSessions } from './http1/drain.js';
import type { ProxyMetrics } from './metrics.js';
import { InboundSession } from './http1/inbound-session.js';
import type { InboundSessions } from './http1/inbound-sessions.js';
import { LocalPool } from './http1/local-pool.js';

export class InboundHttp implements InboundSessions {
  /** One keep-alive pool to local instances; they are on this host, so no TLS. */
  readonly pool = new LocalPool();
  private readonly sessions = new Set<InboundSession>();

  constructor(
    readonly metrics: ProxyMetrics,
    readonly log: Logger,
    /** The local services in force; without it, a connection keeps the service it was accepted for. */
    private readonly services?: () => ReadonlyMap<string, LocalService> | undefined,
    readonly obs: Observability | null = null,
  ) {}

  accept(socket: tls.TLSSocket, peer: PeerInfo): void {
    this.metrics.connGroup('inbound', peer.service.name, 'http')?.track(socket);
    this.sessions.add(new InboundSession(this, socket, peer));
  }

  /** Close the connections that are between requests; true when none is left. */
  closeIdle(): boolean {
    return closeIdleSessions(this.sessions);
  }

  close(): void {
    for (const s of this.sessions) s.teardown();
    this.sessions.clear();
    this.pool.close();
  }

  currentService(svc: LocalService): LocalService {
    return this.services?.()?.get(svc.name) ?? svc;
  }

  forget(session: object): void {
    this.sessions.delete(session as InboundSession);
  }
}
