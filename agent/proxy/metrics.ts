// The proxy's counters. Label values come from a bounded set (service names from config, reason
// codes from fixed lists, status codes), never from request data such as paths.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class ProxyMetrics {
  private readonly handshakeFailures: Counter<'direction' | 'reason'>;
  private readonly tcpOpenedC: Counter<'direction' | 'service'>;
  private readonly tcpActive: Gauge<'direction' | 'service'>;
  private readonly tcpBytes: Counter<'direction' | 'service' | 'flow'>;
  private readonly requests: Counter<'direction' | 'source_service' | 'destination_service' | 'response_code'>;
  private readonly duration: Histogram<'direction' | 'destination_service'>;
  private readonly retries: Counter<'service'>;
  private readonly circuit: Counter<'service' | 'reason'>;
  private readonly ejections: Counter<'service'>;
  private readonly denials: Counter<'service' | 'reason' | 'mode'>;
  private readonly errors: Counter<'direction' | 'service' | 'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.handshakeFailures = new Counter({ name: 'hostmesh_tls_handshake_failures_total', help: 'TLS handshakes refused, by reason.', labelNames: ['direction', 'reason'], registers });
    this.tcpOpenedC = new Counter({ name: 'hostmesh_tcp_connections_opened_total', help: 'Proxied TCP connections opened.', labelNames: ['direction', 'service'], registers });
    this.tcpActive = new Gauge({ name: 'hostmesh_tcp_connections_active', help: 'Proxied TCP connections open now.', labelNames: ['direction', 'service'], registers });
    this.tcpBytes = new Counter({ name: 'hostmesh_tcp_bytes_total', help: 'Bytes carried by proxied TCP connections.', labelNames: ['direction', 'service', 'flow'], registers });
    this.requests = new Counter({
      name: 'hostmesh_requests_total',
      help: 'HTTP requests proxied, by direction, source and destination service and response code.',
      labelNames: ['direction', 'source_service', 'destination_service', 'response_code'],
      registers,
    });
    this.duration = new Histogram({
      name: 'hostmesh_request_duration_seconds',
      help: 'HTTP request duration through the proxy, until the response head.',
      labelNames: ['direction', 'destination_service'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.retries = new Counter({ name: 'hostmesh_retries_total', help: 'Attempts retried, by upstream service.', labelNames: ['service'], registers });
    this.circuit = new Counter({ name: 'hostmesh_circuit_breaker_rejections_total', help: 'Requests or connections refused by the circuit breaker.', labelNames: ['service', 'reason'], registers });
    this.ejections = new Counter({ name: 'hostmesh_outlier_ejections_total', help: 'Endpoints ejected by outlier detection.', labelNames: ['service'], registers });
    this.denials = new Counter({ name: 'hostmesh_access_denials_total', help: 'Requests or connections denied (or, in audit mode, that would be) by access policy.', labelNames: ['service', 'reason', 'mode'], registers });
    this.errors = new Counter({ name: 'hostmesh_proxy_errors_total', help: 'Requests the proxy answered itself with an error, by reason.', labelNames: ['direction', 'service', 'reason'], registers });
  }

  handshakeFailed(direction: 'inbound' | 'outbound', reason: string): void {
    this.handshakeFailures.inc({ direction, reason });
  }
  tcpOpened(direction: string, service: string): void {
    this.tcpOpenedC.inc({ direction, service });
    this.tcpActive.inc({ direction, service });
  }
  tcpClosed(direction: string, service: string, bytesIn: number, bytesOut: number): void {
    this.tcpActive.dec({ direction, service });
    this.tcpBytes.inc({ direction, service, flow: 'in' }, bytesIn);
    this.tcpBytes.inc({ direction, service, flow: 'out' }, bytesOut);
  }
  request(direction: string, source: string, destination: string, status: number, seconds: number): void {
    this.requests.inc({ direction, source_service: source, destination_service: destination, response_code: status });
    this.duration.observe({ direction, destination_service: destination }, seconds);
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
  proxyError(direction: string, service: string, reason: string): void {
    this.errors.inc({ direction, service, reason });
  }
}
