// One authenticated mTLS connection from another agent, carrying http requests for a local
// service. Per request: the target is normalized once, the access policy decides on that path, the
// caller's identity headers are replaced by the verified one, and the request goes to the local
// instance over a kept-alive plain TCP connection with exactly the path that was checked.
import type tls from 'node:tls';
import type { RequestHead, ResponseHead } from '../../http/head-parser.js';
import { IDENTITY_HEADERS, removeHeader, serializeRequestHead } from '../../http/head-writer.js';
import { forwardTarget, normalizeTarget } from '../../policy/normalize-path.js';
import type { LocalService, PeerInfo } from '../inbound.js';
import { Http1Session } from './connection-loop.js';
import { stripForForward } from './forward-headers.js';
import type { UpstreamConn } from './upstream-conn.js';
import type { InboundSessions } from './inbound-sessions.js';

export class InboundSession extends Http1Session {
  private svc: LocalService;
  private started = 0;
  private headStr = '';
  /** No body: the request can be written again if a reused local connection turns out stale. */
  private resendable = false;
  private retried = false;
  private readonly xfcc: string;

  constructor(
    private readonly owner: InboundSessions,
    client: tls.TLSSocket,
    private readonly peer: PeerInfo,
  ) {
    super(client);
    this.svc = peer.service;
    this.xfcc = `URI=${peer.spiffeId}`;
  }

  protected onRequest(head: RequestHead): void {
    this.started = performance.now();
    // The policy in force now, not the one of when the connection was made.
    const svc = (this.svc = this.owner.currentService(this.peer.service));
    const metrics = this.owner.metrics;
    const method = head.method;
    const target = normalizeTarget(method, head.target);
    if (typeof target === 'string') {
      metrics.proxyError('inbound', svc.name, target);
      this.respond(400, target, `request path refused: ${target}`);
      return;
    }
    const decision = svc.access.decide(this.peer.source, method, target.path);
    if (!decision.allowed || decision.wouldDeny) metrics.denied(svc.name, decision.reason, decision.audit ? 'audit' : 'enforce');
    if (!decision.allowed) {
      metrics.request('inbound', this.peer.source, svc.name, 403, (performance.now() - this.started) / 1000);
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
    this.resendable = head.body === 'none';
    this.retried = false;
    this.sendContinue();
    const pool = this.owner.pool;
    this.attach(pool.take(svc.host, svc.port) ?? pool.connect(svc.host, svc.port), this.headStr, null);
  }

  protected onResponse(rh: ResponseHead): boolean {
    this.owner.metrics.request('inbound', this.peer.source, this.svc.name, rh.status, (performance.now() - this.started) / 1000);
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
    metrics.request('inbound', this.peer.source, svc.name, 503, (performance.now() - this.started) / 1000);
    this.respond(503, reason, `local instance of ${svc.name}: ${err?.code ?? err?.message ?? 'connection closed'}`);
  }

  protected onAbort(): void {}

  protected onExchangeEnd(): void {}

  protected releaseConn(conn: UpstreamConn): void {
    this.owner.pool.release(conn);
  }

  protected onClosed(): void {
    this.owner.forget(this);
  }
}
