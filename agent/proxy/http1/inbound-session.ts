// One authenticated mTLS connection from another agent, carrying http requests for a local
// service. Per request: the target is normalized once, the access policy decides on that path, the
// caller's identity headers are replaced by the verified one, and the request goes to the local
// instance over a kept-alive plain TCP connection with exactly the path that was checked.
import type tls from 'node:tls';
import type { RequestHead, ResponseHead } from '../../http/head-parser.js';
import { getHeader, IDENTITY_HEADERS, removeHeader, serializeRequestHead } from '../../http/head-writer.js';
import type { EdgeStats } from '../../metrics/request-metrics.js';
import { httpLine, pathOf } from '../../observability/index.js';
import { SPAN_KIND_SERVER } from '../../observability/otlp-exporter.js';
import { traceIdOf } from '../../observability/trace-context.js';
import type { Hop } from '../../observability/tracer.js';
import { forwardTarget, normalizeTarget } from '../../policy/normalize-path.js';
import { isIdempotent } from '../../resilience/index.js';
import type { LocalService, PeerInfo } from '../inbound.js';
import { Http1Session } from './connection-loop.js';
import { stripForForward } from './forward-headers.js';
import type { UpstreamConn } from './upstream-conn.js';
import type { InboundSessions } from './inbound-sessions.js';

export class InboundSession extends Http1Session {
  private svc: LocalService;
  private started = 0;
  private headStr = '';
  /** Idempotent, no body: the request can be written again if a reused local connection turns out stale. */
  private resendable = false;
  private retried = false;
  private readonly xfcc: string;
  // Observing the request: metrics always (unless off), the access log and a span when on.
  private readonly edge: EdgeStats | null;
  private status = 0;
  private logThis = false;
  private hop: Hop | null = null;
  private sent0 = 0;

  constructor(
    private readonly owner: InboundSessions,
    client: tls.TLSSocket,
    private readonly peer: PeerInfo,
  ) {
    super(client);
    this.svc = peer.service;
    this.xfcc = `URI=${peer.spiffeId}`;
    // Caller and service are fixed for the connection (a service keeps its name across pushes).
    this.edge = owner.metrics.edge('inbound', peer.source, peer.service.name);
  }

  protected onRequest(head: RequestHead): void {
    this.started = performance.now();
    // The policy in force now, not the one of when the connection was made.
    const svc = (this.svc = this.owner.currentService(this.peer.service));
    const metrics = this.owner.metrics;
    const obs = this.owner.obs;
    if (svc.accessLog && obs !== null) {
      this.logThis = true;
      this.sent0 = this.client.bytesWritten;
    }
    // Before the policy: a denied request is part of the trace too.
    const tracer = obs?.tracer ?? null;
    if (tracer !== null) this.hop = tracer.hop(head.headers);
    const method = head.method;
    const target = normalizeTarget(method, head.target);
    if (typeof target === 'string') {
      metrics.proxyError('inbound', svc.name, target);
      this.record(400);
      this.respond(400, target, `request path refused: ${target}`);
      return;
    }
    const decision = svc.access.decide(this.peer.source, method, target.path);
    if (!decision.allowed || decision.wouldDeny) metrics.denied(svc.name, decision.reason, decision.audit ? 'audit' : 'enforce');
    if (!decision.allowed) {
      this.record(403);
      this.respond(403, decision.reason, `${this.peer.spiffeId} may not ${method} ${target.path ?? ''} on ${svc.name}`);
      return;
    }
    const h = head.headers;
    IDENTITY_HEADERS.apply(h);
    stripForForward(h);
    // We answer `100 Continue` ourselves (as node:http did), so the local instance is not asked to.
    if (head.expectContinue) removeHeader(h, 'expect');
    h.push('x-hostmesh-source', this.peer.spiffeId, 'x-forwarded-client-cert', this.xfcc);
    if (head.version === '1.0' && head.keepAlive) h.push('connection', 'keep-alive');
    this.headStr = serializeRequestHead(method, forwardTarget(target), head.version, h);
    // A POST the instance may have taken before its connection died is not sent twice (RFC 9110 §9.2.2).
    this.resendable = head.body === 'none' && isIdempotent(method);
    this.retried = false;
    this.sendContinue();
    const pool = this.owner.pool;
    this.attach(pool.take(svc.host, svc.port) ?? pool.connect(svc.host, svc.port), this.headStr, null);
  }

  protected onResponse(rh: ResponseHead): boolean {
    this.record(rh.status);
    return true;
  }

  protected onUpstreamFailure(err: NodeJS.ErrnoException | null, stale: boolean): void {
    const svc = this.svc;
    if (stale && this.resendable && !this.retried) {
      // The local instance closed an idle connection as we used it: once more on a new one.
      this.retried = true;
      this.attach(this.owner.pool.connect(svc.host, svc.port), this.headStr, null);
      return;
    }
    // 503 tells the calling agent this instance cannot serve now, which it may retry elsewhere.
    const reason = err?.code === 'ECONNREFUSED' ? 'LOCAL_UNAVAILABLE' : 'LOCAL_RESET';
    const metrics = this.owner.metrics;
    metrics.proxyError('inbound', svc.name, reason);
    this.record(503);
    this.respond(503, reason, `local instance of ${svc.name}: ${err?.code ?? err?.message ?? 'connection closed'}`);
  }

  protected onAbort(): void {}

  /** The request is answered with `status` (by the instance or by us): count it and time it. */
  private record(status: number): void {
    this.status = status;
    const e = this.edge;
    if (e !== null) e.record(status, (performance.now() - this.started) / 1000);
  }

  protected onExchangeEnd(): void {
    if (this.logThis || this.hop !== null) {
      this.observe();
      this.logThis = false;
      this.hop = null;
    }
    this.status = 0;
  }

  /** Access log line and span, once the exchange is over (so with its full duration and bytes). */
  private observe(): void {
    const head = this.head;
    const obs = this.owner.obs;
    if (head === null || obs === null) return;
    const endMs = performance.now();
    const svc = this.svc;
    const upstream = `${svc.host}:${svc.port}`;
    if (this.logThis) {
      obs.accessLog.write(
        httpLine({
          direction: 'inbound',
          source: this.peer.source,
          destination: svc.name,
          head,
          status: this.status,
          startedMs: this.started,
          endMs,
          bytesReceived: head.headSize + this.reqBodyBytes,
          bytesSent: this.client.bytesWritten - this.sent0,
          upstream,
          traceId: this.hop?.traceId ?? traceIdOf(getHeader(head.headers, 'traceparent')),
        }),
      );
    }
    const hop = this.hop;
    if (hop !== null) {
      obs.tracer?.end(hop, {
        service: svc.name,
        name: `${head.method} ${svc.name}`,
        kind: SPAN_KIND_SERVER,
        startMs: performance.timeOrigin + this.started,
        endMs: performance.timeOrigin + endMs,
        attributes: {
          'http.request.method': head.method,
          'url.path': pathOf(head.target),
          'http.response.status_code': this.status,
          'client.service': this.peer.source,
          'hostmesh.direction': 'inbound',
          'hostmesh.source': this.peer.spiffeId,
          'hostmesh.upstream': upstream,
        },
        error: this.status === 0 || this.status >= 500,
      });
    }
  }

  protected releaseConn(conn: UpstreamConn): void {
    this.owner.pool.release(conn);
  }

  protected onClosed(): void {
    this.owner.forget(this);
  }
}
