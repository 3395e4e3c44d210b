// One app connection to an upstream's local port. Per request: the Route's first matching rule
// picks a weighted subset, the balancer an instance of it, and a pooled keep-alive mTLS connection
// carries the request to that instance's agent. Failures are retried per the Route's policy, within
// the retry budget; the circuit breaker and the deadline answer for themselves with 503/504 and a
// reason in `x-hostmesh-error`.
//
// Bodies up to MAX_RETRY_BODY are read whole before the first try, so that any try can send them
// again; larger ones (and chunked ones) are streamed to the first try, and never retried.
//
// Timers: one per request (the route deadline) and one per try, each set with a method bound once
// per connection, never a fresh closure.
import { randomUUID } from 'node:crypto';
import type net from 'node:net';
import type { Endpoint } from '../../../shared/protocol.js';
import type { RequestHead, ResponseHead } from '../../http/head-parser.js';
import { getHeader, indexOfHeader, removeHeader, serializeRequestHead } from '../../http/head-writer.js';
import { coarseClock } from '../../lb/index.js';
import type { EdgeStats } from '../../metrics/request-metrics.js';
import { httpLine, pathOf } from '../../observability/index.js';
import { SPAN_KIND_CLIENT } from '../../observability/otlp-exporter.js';
import { traceIdOf } from '../../observability/trace-context.js';
import type { Hop } from '../../observability/tracer.js';
import { normalizeTarget } from '../../policy/normalize-path.js';
import { isIdempotent, retryDecision, type Outcome } from '../../resilience/index.js';
import { STREAM_REFUSED } from '../mux/channel.js';
import type { CompiledRule, UpstreamState } from '../upstream.js';
import { Http1Session } from './connection-loop.js';
import { Req } from './loop-states.js';
import { stripForForward } from './forward-headers.js';
import type { DialOwner } from './mesh-pool.js';
import type { OutboundSessions } from './outbound-sessions.js';
import { matchRule } from './route-match.js';
import { newTraceparent } from './trace-ids.js';
import type { UpstreamConn } from './upstream-conn.js';

/** Bodies up to this size are buffered so the request can be retried; larger ones stream, once. */
export const MAX_RETRY_BODY = 64 * 1024;

export class OutboundSession extends Http1Session implements DialOwner {
  // The request.
  private up: UpstreamState | null = null;
  private rule: CompiledRule | null = null;
  private started = 0;
  private deadline = 0;
  private headStr = '';
  private bufferable = false;
  /** A response (the upstream's or ours) is decided: no further try, and the deadline is off. */
  private answered = false;
  private overall: NodeJS.Timeout | null = null;
  private retries = 0;
  private avoid: Endpoint | null = null;
  // The try in progress.
  private ep: Endpoint | null = null;
  private t0 = 0;
  private inAttempt = false;
  private waiting = false; // holds a pending slot and waits for a connection (circuit breaker)
  /** The try went to its endpoint (not just picked it and waited): only then is the endpoint judged. */
  private dispatched = false;
  /** When the try in progress times out (its per-try timer), and how long it was given. */
  private tryEnds = 0;
  private tryMs = 0;
  private staleRetried = false;
  private dialToken = 0; // bumped when a dial's result is no longer wanted by this try
  private perTry: NodeJS.Timeout | null = null;
  // Observing the request: metrics always (unless off), the access log and a span when on.
  private readonly edge: EdgeStats | null;
  private status = 0;
  private logThis = false;
  private hop: Hop | null = null;
  private sent0 = 0;

  constructor(
    private readonly owner: OutboundSessions,
    private readonly service: string,
    client: net.Socket,
  ) {
    super(client);
    // The calling identity and the upstream are fixed for the connection: one lookup, not one per request.
    this.edge = owner.metrics.edge('outbound', owner.source(), service);
  }

  protected onRequest(head: RequestHead): void {
    this.started = performance.now();
    const service = this.service;
    const up = this.owner.upstream(service);
    if (up === undefined) {
      this.record(503);
      this.respond(503, 'NO_UPSTREAM', `upstream ${service} is not configured on this agent`);
      return;
    }
    if (up.settings.accessLog && this.owner.obs !== null) {
      this.logThis = true;
      this.sent0 = this.client.bytesWritten;
    }
    const metrics = this.owner.metrics;
    const method = head.method;
    const target = normalizeTarget(method, head.target);
    if (typeof target === 'string') {
      metrics.proxyError('outbound', service, target);
      this.record(400);
      this.respond(400, target, `request path refused: ${target}`);
      return;
    }
    const h = head.headers;
    const rule = matchRule(up.settings.rules, method, target.path ?? '', h);
    if (rule === null) {
      metrics.proxyError('outbound', service, 'NO_ROUTE');
      this.record(404);
      this.respond(404, 'NO_ROUTE', `no route of ${service} matches ${method} ${target.path ?? ''}`);
      return;
    }
    stripForForward(h);
    // We answer `100 Continue` ourselves (as node:http did) and hold the body, so nobody behind us is asked.
    if (head.expectContinue) removeHeader(h, 'expect');
    const tracer = this.owner.obs?.tracer ?? null;
    if (tracer !== null) this.hop = tracer.hop(h);
    else if (indexOfHeader(h, 'traceparent') === -1) h.push('traceparent', newTraceparent());
    if (indexOfHeader(h, 'x-request-id') === -1) h.push('x-request-id', randomUUID());
    if (head.version === '1.0' && head.keepAlive) h.push('connection', 'keep-alive');
    // The target goes as the app sent it: the far agent normalizes it once, for its policy and its
    // instance alike.
    this.headStr = serializeRequestHead(method, head.target, head.version, h);
    this.up = up;
    this.rule = rule;
    this.retries = 0;
    this.avoid = null;
    this.answered = false;
    const hasBody = head.body !== 'none';
    this.bufferable = !hasBody || (head.body === 'length' && head.contentLength <= MAX_RETRY_BODY);
    up.budget.deposit();
    const timeoutMs = up.settings.timeoutMs;
    this.deadline = this.started + timeoutMs;
    this.overall = setTimeout(this.onDeadline, timeoutMs);
    this.sendContinue();
    if (hasBody && this.bufferable) {
      this.bufferBody();
      return;
    }
    this.attempt();
  }

  protected override onBodyBuffered(): void {
    if (!this.answered) this.attempt();
  }

  /** One try: pick an endpoint, pass the circuit breaker, get a connection, send. */
  private attempt(): void {
    const up = this.up as UpstreamState;
    const service = this.service;
    const metrics = this.owner.metrics;
    const candidates = (this.rule as CompiledRule).split.select(up.current());
    let ep = candidates ? up.balancer.pick(candidates) : null;
    // One re-pick to avoid the endpoint that just failed, when there is another.
    if (ep && ep === this.avoid && candidates && candidates.length > 1) ep = up.balancer.pick(candidates);
    if (!ep) {
      this.answer();
      metrics.proxyError('outbound', service, 'NO_HEALTHY_ENDPOINTS');
      this.record(503);
      this.respond(503, 'NO_HEALTHY_ENDPOINTS', `no healthy instance of ${service}`);
      return;
    }
    // Past maxConnections a request waits for a connection; past maxPending it is refused now.
    const breaker = up.breaker;
    const waiting = breaker.requests >= breaker.limits.maxConnections;
    const refusal = (waiting ? breaker.tryAcquirePending() : null) ?? breaker.tryAcquireRequest();
    if (refusal) {
      if (waiting && refusal !== 'max-pending') breaker.releasePending();
      this.answer();
      metrics.circuitOpen(service, refusal);
      this.record(503);
      this.respond(503, 'CIRCUIT_OPEN', `${service}: circuit breaker open (${refusal})`, 'x-hostmesh-circuit', refusal);
      return;
    }
    this.ep = ep;
    this.inAttempt = true;
    this.waiting = waiting;
    this.dispatched = false;
    this.staleRetried = false;
    const perTryMs = Math.min(up.settings.perTryTimeoutMs, Math.max(1, this.deadline - performance.now()));
    this.tryMs = perTryMs;
    this.tryEnds = performance.now() + perTryMs;
    this.perTry = setTimeout(this.onPerTry, perTryMs);
    if (waiting) this.owner.enqueue(up, this);
    else this.dispatch();
  }

  /** The try goes to its endpoint now: from here it counts as in flight there, and is timed. */
  private dispatch(): void {
    this.dispatched = true;
    this.t0 = performance.now();
    (this.up as UpstreamState).balancer.onStart((this.ep as Endpoint).host);
    this.connect(false);
  }

  /** A request of this upstream finished: a waiting try may go. False if this one no longer waits. */
  wake(): boolean {
    if (!this.inAttempt || !this.waiting || this.closed) return false;
    // Out of time already (its timer is due in this same turn): sent now, it would time out at once
    // and count against an endpoint it never had a chance to reach. Its timer answers it.
    if (performance.now() >= this.tryEnds) return false;
    this.waiting = false;
    (this.up as UpstreamState).breaker.releasePending();
    this.dispatch();
    return true;
  }

  private connect(fresh: boolean): void {
    const ep = this.ep as Endpoint;
    const pool = this.owner.pool;
    const conn = fresh ? null : pool.take(this.service, ep);
    if (conn !== null) {
      this.attach(conn, this.headStr, this.bodyBuf);
      return;
    }
    const timeout = Math.max(1, Math.min((this.up as UpstreamState).settings.connectTimeoutMs, this.deadline - performance.now()));
    pool.dial(this.service, ep, timeout, this, ++this.dialToken);
  }

  onDialed(conn: UpstreamConn, token: number): boolean {
    if (token !== this.dialToken || !this.inAttempt || this.closed) return false;
    this.attach(conn, this.headStr, this.bodyBuf);
    return true;
  }

  onDialFailed(err: Error, token: number): void {
    if (token !== this.dialToken || !this.inAttempt || this.closed) return;
    this.failed('connect-failure', err.message);
  }

  protected onResponse(rh: ResponseHead): boolean {
    const status = rh.status;
    this.settle(status);
    if (status >= 500 && this.retry(status)) return false;
    this.answer();
    this.record(status);
    return true;
  }

  protected onUpstreamFailure(err: NodeJS.ErrnoException | null, stale: boolean): void {
    // A stream the other agent refused at open was not processed: it goes again whatever its
    // method. A kept-alive connection that died showing no byte of a response most likely closed
    // while idle (the far agent restarted or closed it), but the far side may also have taken the
    // request and died before answering: only an idempotent request goes again (RFC 9110 §9.2.2).
    const again = err?.code === STREAM_REFUSED || isIdempotent((this.head as RequestHead).method);
    if (stale && again && this.bufferable && this.inAttempt && !this.staleRetried) {
      // Not the endpoint's fault: it is not blamed, and the retry budget is not spent.
      this.staleRetried = true;
      this.connect(true);
      return;
    }
    this.failed('reset', err?.code ?? err?.message ?? 'connection closed');
  }

  private readonly onPerTry = (): void => {
    this.perTry = null;
    if (!this.inAttempt) return;
    this.detach();
    this.dialToken++; // a dial still under way will feed the pool instead
    this.failed('timeout', 'timed out', this.slowEndpoint());
  };

  /**
   * Whether a timeout is the endpoint's doing: not if the client was still sending its body, nor if
   * the try reached the endpoint with less than half its time left (it waited for a connection).
   */
  private slowEndpoint(): boolean {
    return this.reqState === Req.Done && this.dispatched && performance.now() - this.t0 >= this.tryMs / 2;
  }

  private readonly onDeadline = (): void => {
    this.overall = null;
    if (this.answered) return;
    this.answer();
    if (this.inAttempt) {
      this.detach();
      this.dialToken++;
      this.settle('timeout', this.slowEndpoint());
    }
    const metrics = this.owner.metrics;
    const timeoutMs = (this.up as UpstreamState).settings.timeoutMs;
    metrics.proxyError('outbound', this.service, 'TIMEOUT');
    this.record(504);
    this.respond(504, 'TIMEOUT', `${this.service} did not answer within ${timeoutMs} ms`);
  };

  /** The try failed: retry if the policy and budget allow, else answer with why. */
  private failed(outcome: Outcome, detail: string, blame = true): void {
    if (!this.settle(outcome, blame)) return;
    if (this.retry(outcome)) return;
    if (this.answered) return;
    this.answer();
    const [status, reason] = outcome === 'timeout' ? [504, 'TIMEOUT'] : outcome === 'reset' ? [502, 'UPSTREAM_RESET'] : [503, 'CONNECT_FAILURE'];
    const key = (this.ep as Endpoint).host;
    const metrics = this.owner.metrics;
    metrics.proxyError('outbound', this.service, reason);
    this.record(status);
    this.owner.log.debug({ service: this.service, endpoint: key, err: detail }, 'upstream attempt failed');
    this.respond(status, reason, `${this.service} (${key}): ${detail}`);
  }

  private retry(outcome: Outcome): boolean {
    if (this.answered || !this.bufferable) return false;
    const up = this.up as UpstreamState;
    if (retryDecision(up.settings.retry, (this.head as RequestHead).method, outcome, this.retries) !== 'retry') return false;
    if (performance.now() + 1 >= this.deadline) return false;
    if (!up.budget.tryWithdraw()) return false;
    this.owner.metrics.retried(this.service);
    this.retries++;
    this.avoid = this.ep;
    this.detach();
    this.attempt();
    return true;
  }

  /**
   * End the try in progress with its outcome: balancer, breaker and outlier accounting. `blame`
   * false: the failure was not the endpoint's doing (the client was still sending).
   */
  private settle(outcome: Outcome, blame = true): boolean {
    if (!this.inAttempt) return false;
    this.inAttempt = false;
    if (this.perTry !== null) {
      clearTimeout(this.perTry);
      this.perTry = null;
    }
    const up = this.up as UpstreamState;
    const key = (this.ep as Endpoint).host;
    const ok = typeof outcome === 'number' && outcome < 500;
    up.breaker.releaseRequest();
    if (this.waiting) {
      this.waiting = false;
      up.breaker.releasePending();
    }
    // A try that never left the circuit breaker's queue did not reach its endpoint: no verdict on it.
    if (this.dispatched) {
      // Not blamed: a failure with no latency, which leaves p2c-ewma's estimate where it was.
      up.balancer.onFinish(key, blame ? performance.now() - this.t0 : 0, ok);
      if (ok) up.outlier.onSuccess(key);
      else if (blame && up.outlier.onFailure(key, coarseClock.now())) {
        this.owner.metrics.ejected(this.service);
        this.owner.log.info({ service: this.service, endpoint: key, outcome }, 'endpoint ejected by outlier detection');
      }
    }
    this.owner.wakeOne(up);
    return true;
  }

  private answer(): void {
    this.answered = true;
    if (this.overall !== null) {
      clearTimeout(this.overall);
      this.overall = null;
    }
  }

  protected onAbort(): void {
    this.dialToken++;
    if (!this.inAttempt) return;
    // The app went away (or sent a broken body): not the endpoint's fault, so no outlier verdict.
    this.inAttempt = false;
    if (this.perTry !== null) {
      clearTimeout(this.perTry);
      this.perTry = null;
    }
    const up = this.up as UpstreamState;
    if (this.dispatched) up.balancer.onFinish((this.ep as Endpoint).host, performance.now() - this.t0, true);
    up.breaker.releaseRequest();
    if (this.waiting) {
      this.waiting = false;
      up.breaker.releasePending();
    }
    this.owner.wakeOne(up);
  }

  /** The request is answered with `status` (by the upstream or by us): count it and time it. */
  private record(status: number): void {
    this.status = status;
    const e = this.edge;
    if (e !== null) e.record(status, (performance.now() - this.started) / 1000);
  }

  /** Access log line and span, once the exchange is over (so with its full duration and bytes). */
  private observe(): void {
    const head = this.head;
    const obs = this.owner.obs;
    if (head === null || obs === null) return;
    const endMs = performance.now();
    const ep = this.ep;
    const upstream = ep === null ? '' : `${ep.address}:${ep.port}`;
    const h = head.headers;
    if (this.logThis) {
      obs.accessLog.write(
        httpLine(
          {
            direction: 'outbound',
            source: this.owner.source(),
            destination: this.service,
            head,
            status: this.status,
            startedMs: this.started,
            endMs,
            bytesReceived: head.headSize + this.reqBodyBytes,
            bytesSent: this.client.bytesWritten - this.sent0,
            upstream,
            traceId: this.hop?.traceId ?? traceIdOf(getHeader(h, 'traceparent')),
          },
          { upstream_instance: ep?.host ?? '', retries: this.retries },
        ),
      );
    }
    const hop = this.hop;
    if (hop !== null) {
      obs.tracer?.end(hop, {
        service: this.owner.source(),
        name: `${head.method} ${this.service}`,
        kind: SPAN_KIND_CLIENT,
        startMs: performance.timeOrigin + this.started,
        endMs: performance.timeOrigin + endMs,
        attributes: {
          'http.request.method': head.method,
          'url.path': pathOf(head.target),
          'http.response.status_code': this.status,
          'server.address': upstream,
          'peer.service': this.service,
          'hostmesh.direction': 'outbound',
          'hostmesh.upstream.instance': ep?.host ?? '',
          'hostmesh.retries': this.retries,
        },
        error: this.status === 0 || this.status >= 500,
      });
    }
  }

  protected onExchangeEnd(): void {
    if (this.logThis || this.hop !== null) {
      this.observe();
      this.logThis = false;
      this.hop = null;
    }
    this.status = 0;
    if (this.inAttempt) this.onAbort();
    this.answer();
    this.answered = false;
    this.up = null;
    this.rule = null;
    this.ep = null;
    this.avoid = null;
  }

  protected releaseConn(conn: UpstreamConn): void {
    this.owner.pool.release(conn);
  }

  protected onClosed(): void {
    this.owner.forget(this);
  }
}
