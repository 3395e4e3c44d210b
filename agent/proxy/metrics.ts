// The proxy's metrics. Label values come from a bounded set (service names from config and verified
// certificates, reason codes from fixed lists, status codes), never from request data such as paths
// or from instance ports.
//
// Per-request and per-connection figures (requests, latency, connections, bytes) are kept by
// RequestMetrics and ConnectionMetrics, cheaply. `metrics.traffic: false` takes them off /metrics
// and stops the connection tracking; the per-edge request figures are still kept, because the
// golden-metric summaries (`hostmesh stat`) are made from them, unless `metrics.summaries: false`
// too: then nothing at all is recorded per request. The rest counts rare events (a
// retry, a denial, an ejection) with prom-client directly.
import { Counter, Gauge, type Registry } from 'prom-client';
import { ConnectionMetrics, type ConnGroup, type Protocol } from '../metrics/connection-metrics.js';
import { RequestMetrics, type Direction, type EdgeStats } from '../metrics/request-metrics.js';
import { coarseClock } from '../lb/index.js';
import type { UpstreamState } from './upstream.js';

export class ProxyMetrics {
  readonly requests: RequestMetrics;
  readonly connections: ConnectionMetrics;
  private readonly handshakeFailures: Counter<'direction' | 'reason'>;
  private readonly retries: Counter<'service'>;
  private readonly circuit: Counter<'service' | 'reason'>;
  private readonly ejections: Counter<'service'>;
  private readonly denials: Counter<'service' | 'reason' | 'mode'>;
  private readonly errors: Counter<'direction' | 'service' | 'reason'>;
  private readonly churn: Counter<'service' | 'source_service'>;
  private upstreams: () => Iterable<UpstreamState> = () => [];

  /** False: no edge is kept (neither /metrics nor the summaries want them). */
  private readonly keepEdges: boolean;

  constructor(registry: Registry, opts: { traffic?: boolean; summaries?: boolean } = {}) {
    const registers = [registry];
    const traffic = opts.traffic ?? true;
    this.keepEdges = traffic || (opts.summaries ?? true);
    this.requests = new RequestMetrics(registry, traffic);
    this.connections = new ConnectionMetrics(registry, traffic);
    this.handshakeFailures = new Counter({ name: 'hostmesh_tls_handshake_failures_total', help: 'TLS handshakes refused, by reason.', labelNames: ['direction', 'reason'], registers });
    this.retries = new Counter({ name: 'hostmesh_retries_total', help: 'Attempts retried, by upstream service.', labelNames: ['service'], registers });
    this.circuit = new Counter({ name: 'hostmesh_circuit_breaker_rejections_total', help: 'Requests or connections refused by the circuit breaker.', labelNames: ['service', 'reason'], registers });
    this.ejections = new Counter({ name: 'hostmesh_outlier_ejections_total', help: 'Endpoints ejected by outlier detection.', labelNames: ['service'], registers });
    this.denials = new Counter({ name: 'hostmesh_access_denials_total', help: 'Requests or connections denied (or, in audit mode, that would be) by access policy.', labelNames: ['service', 'reason', 'mode'], registers });
    this.errors = new Counter({ name: 'hostmesh_proxy_errors_total', help: 'Requests the proxy answered itself with an error (timeouts among them), by reason.', labelNames: ['direction', 'service', 'reason'], registers });
    this.churn = new Counter({
      name: 'hostmesh_mux_churn_goaways_total',
      help: 'Multiplexed sessions from another agent told to go away because it reset more streams before they were answered than the budget allows (rapid reset).',
      labelNames: ['service', 'source_service'],
      registers,
    });
    const self = this;
    new Gauge({
      name: 'hostmesh_upstream_endpoints',
      help: 'Endpoints of each upstream in the applied config, by state: healthy, unhealthy (its health check fails) or ejected (by outlier detection).',
      labelNames: ['service', 'state'],
      registers,
      collect() {
        this.reset();
        const now = coarseClock.now();
        for (const up of self.upstreams()) {
          let healthy = 0;
          let unhealthy = 0;
          let ejected = 0;
          for (const ep of up.endpoints) {
            if (!ep.healthy) unhealthy++;
            else if (up.outlier.isEjected(ep.host, now)) ejected++;
            else healthy++;
          }
          this.set({ service: up.service, state: 'healthy' }, healthy);
          this.set({ service: up.service, state: 'unhealthy' }, unhealthy);
          this.set({ service: up.service, state: 'ejected' }, ejected);
        }
      },
    });
  }

  /** Where the endpoints gauge reads the upstreams in force. */
  watchUpstreams(list: () => Iterable<UpstreamState>): void {
    this.upstreams = list;
  }

  /** Per-request stats of an edge (kept with traffic metrics off while the summaries read them; else null). Once per connection. */
  edge(direction: Direction, source: string, destination: string): EdgeStats | null {
    return this.keepEdges ? this.requests.edge(direction, source, destination) : null;
  }

  /** Per-connection stats (null when traffic metrics are off). */
  connGroup(direction: Direction, service: string, protocol: Protocol): ConnGroup | null {
    return this.connections.group(direction, service, protocol);
  }

  handshakeFailed(direction: 'inbound' | 'outbound', reason: string): void {
    this.handshakeFailures.inc({ direction, reason });
  }
  retried(service: string): void {
    this.retries.inc({ service });
  }
  circuitOpen(service: string, reason: string): void {
    this.circuit.inc({ service, reason });
  }
  ejected(service: string): void {
    this.ejections.inc({ service });
  }
  denied(service: string, reason: string, mode: 'enforce' | 'audit'): void {
    this.denials.inc({ service, reason, mode });
  }
  muxChurn(service: string, source: string): void {
    this.churn.inc({ service, source_service: source });
  }
  proxyError(direction: string, service: string, reason: string): void {
    this.errors.inc({ direction, service, reason });
  }
}
