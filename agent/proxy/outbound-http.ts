// Outbound L7: an app's HTTP requests to an upstream's local port. Per request: the Route's first
// matching rule picks a weighted subset, the balancer an instance of it, and a pooled keep-alive
// mTLS connection carries the request to that instance's agent. Failures are retried per the
// Route's policy, within the retry budget; the circuit breaker and the deadline answer for
// themselves with 503/504 and a reason in `x-hostmesh-error`.
import http from 'node:http';
import https from 'node:https';
import { randomBytes, randomUUID } from 'node:crypto';
import type net from 'node:net';
import type { Logger } from '../../shared/log.js';
import type { Endpoint } from '../../shared/protocol.js';
import { serviceServerName } from '../../shared/identity.js';
import { coarseClock } from '../lb/index.js';
import { isPathError, normalizeTarget } from '../policy/normalize-path.js';
import { retryDecision, type Outcome } from '../resilience/index.js';
import { copyRequestHeaders, copyResponseHeaders, headerValue, sendError, SERVER_LIMITS } from './http-common.js';
import type { ProxyMetrics } from './metrics.js';
import type { TlsMaterial } from './tls-material.js';
import type { CompiledRule, UpstreamState } from './upstream.js';

/** Bodies up to this size are buffered so the request can be retried; larger ones stream, once. */
const MAX_RETRY_BODY = 64 * 1024;

interface PoolEntry {
  agent: https.Agent;
  version: number;
  maxSockets: number;
}

class AttemptTimeout extends Error {
  constructor() {
    super('per-try timeout');
  }
}

export class OutboundHttp {
  private readonly server: http.Server;
  private readonly services = new WeakMap<object, string>();
  private readonly pools = new Map<string, PoolEntry>();

  constructor(
    private readonly upstream: (service: string) => UpstreamState | undefined,
    private readonly material: TlsMaterial,
    private readonly trustDomain: () => string,
    private readonly source: () => string,
    private readonly metrics: ProxyMetrics,
    private readonly log: Logger,
  ) {
    this.server = http.createServer({ ...SERVER_LIMITS }, (req, res) => this.onRequest(req, res));
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nx-hostmesh-error: BAD_REQUEST\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  accept(service: string, socket: net.Socket): void {
    this.services.set(socket, service);
    this.server.emit('connection', socket);
  }

  close(): void {
    for (const p of this.pools.values()) p.agent.destroy();
    this.pools.clear();
    this.server.closeAllConnections();
  }

  /** The keep-alive pool for a service, replaced (not reused) once certificates or limits change. */
  private pool(up: UpstreamState): https.Agent {
    const version = this.material.version;
    const maxSockets = up.breaker.limits.maxConnections;
    const cur = this.pools.get(up.service);
    if (cur && cur.version === version && cur.maxSockets === maxSockets) return cur.agent;
    // The old pool's idle connections are closed by the far side's keep-alive timeout; requests in
    // flight on them finish undisturbed.
    const expected = `URI:spiffe://${this.trustDomain()}/service/${up.service}`;
    const agent = new https.Agent({
      keepAlive: true,
      maxSockets,
      maxFreeSockets: 256,
      scheduling: 'lifo',
      secureContext: this.material.client(),
      checkServerIdentity: (_host, cert) => {
        const uris = (cert.subjectaltname ?? '').split(', ').filter((p) => p.startsWith('URI:'));
        return uris.length === 1 && uris[0] === expected ? undefined : new Error(`peer is not ${expected.slice(4)}`);
      },
    });
    this.pools.set(up.service, { agent, version, maxSockets });
    return agent;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    const service = this.services.get(req.socket);
    const up = service ? this.upstream(service) : undefined;
    const source = this.source();
    if (!service || !up) {
      return sendError(res, 503, 'NO_UPSTREAM', `upstream ${service ?? '?'} is not configured on this agent`);
    }
    const method = req.method ?? 'GET';
    const target = normalizeTarget(method, req.url ?? '/');
    if (typeof target === 'string' && isPathError(target)) {
      this.metrics.proxyError('outbound', service, target);
      return sendError(res, 400, target, `request path refused: ${target}`);
    }
    const nt = target as Exclude<typeof target, string>;
    const rule = matchRule(up.settings.rules, method, nt.path ?? '', req.rawHeaders);
    if (!rule) {
      this.metrics.proxyError('outbound', service, 'NO_ROUTE');
      return sendError(res, 404, 'NO_ROUTE', `no route of ${service} matches ${method} ${nt.path ?? ''}`);
    }
    const headers = copyRequestHeaders(req.rawHeaders, false);
    if (headerValue(headers, 'traceparent') === undefined) headers.push('traceparent', `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`);
    if (headerValue(headers, 'x-request-id') === undefined) headers.push('x-request-id', randomUUID());
    const path = req.url ?? '/';

    const deadline = started + up.settings.timeoutMs;
    const cl = req.headers['content-length'];
    const hasBody = cl !== undefined ? cl !== '0' : req.headers['transfer-encoding'] !== undefined;
    const bufferable = !hasBody || (cl !== undefined && Number(cl) <= MAX_RETRY_BODY);
    up.budget.deposit();

    let done = false;
    const overall = setTimeout(() => {
      if (done) return;
      done = true;
      this.metrics.proxyError('outbound', service, 'TIMEOUT');
      this.metrics.request('outbound', source, service, 504, (performance.now() - started) / 1000);
      sendError(res, 504, 'TIMEOUT', `${service} did not answer within ${up.settings.timeoutMs} ms`);
    }, up.settings.timeoutMs);
    const finish = (): void => {
      done = true;
      clearTimeout(overall);
    };
    res.on('close', finish);

    const run = (body: Buffer | null): void => {
      const attempt = (n: number, avoid: Endpoint | null): void => {
        if (done) return;
        const eligible = up.current();
        const candidates = rule.split.select(eligible);
        let ep = candidates ? up.balancer.pick(candidates) : null;
        if (ep && ep === avoid && candidates && candidates.length > 1) ep = up.balancer.pick(candidates);
        if (!ep) {
          finish();
          this.metrics.proxyError('outbound', service, 'NO_HEALTHY_ENDPOINTS');
          this.metrics.request('outbound', source, service, 503, (performance.now() - started) / 1000);
          return sendError(res, 503, 'NO_HEALTHY_ENDPOINTS', `no healthy instance of ${service}`);
        }
        // Past maxConnections a request waits for a connection; past maxPending it is refused now.
        const waiting = up.breaker.requests >= up.breaker.limits.maxConnections;
        const refusal = (waiting ? up.breaker.tryAcquirePending() : null) ?? up.breaker.tryAcquireRequest();
        if (refusal) {
          if (waiting && refusal !== 'max-pending') up.breaker.releasePending();
          finish();
          this.metrics.circuitOpen(service, refusal);
          this.metrics.request('outbound', source, service, 503, (performance.now() - started) / 1000);
          res.setHeader('x-hostmesh-circuit', refusal);
          return sendError(res, 503, 'CIRCUIT_OPEN', `${service}: circuit breaker open (${refusal})`);
        }
        const key = ep.host;
        const t0 = performance.now();
        up.balancer.onStart(key);
        let settled = false;
        let connected = false;
        const settle = (outcome: Outcome): boolean => {
          if (settled) return false;
          settled = true;
          clearTimeout(perTry);
          const ok = typeof outcome === 'number' && outcome < 500;
          up.balancer.onFinish(key, performance.now() - t0, ok);
          up.breaker.releaseRequest();
          if (waiting) up.breaker.releasePending();
          if (ok) up.outlier.onSuccess(key);
          else if (up.outlier.onFailure(key, coarseClock.now())) {
            this.metrics.ejected(service);
            this.log.info({ service, endpoint: key, outcome }, 'endpoint ejected by outlier detection');
          }
          return true;
        };
        const retry = (outcome: Outcome): boolean => {
          if (done || !bufferable) return false;
          if (retryDecision(up.settings.retry, method, outcome, n) !== 'retry') return false;
          if (performance.now() + 1 >= deadline) return false;
          if (!up.budget.tryWithdraw()) return false;
          this.metrics.retried(service);
          attempt(n + 1, ep);
          return true;
        };
        const creq = https.request({
          host: ep.address,
          port: ep.port,
          servername: serviceServerName(service, this.trustDomain()),
          method,
          path,
          headers,
          agent: this.pool(up),
          setHost: false,
        });
        const perTryMs = Math.min(up.settings.perTryTimeoutMs, Math.max(1, deadline - performance.now()));
        const perTry = setTimeout(() => creq.destroy(new AttemptTimeout()), perTryMs);
        creq.on('socket', (s) => {
          if (!s.connecting) connected = true;
          else s.once('secureConnect', () => (connected = true));
        });
        creq.on('response', (ures) => {
          const status = ures.statusCode ?? 502;
          if (!settle(status)) return;
          if (status >= 500 && retry(status)) {
            ures.resume();
            return;
          }
          if (done) {
            ures.resume();
            return;
          }
          finish();
          this.metrics.request('outbound', source, service, status, (performance.now() - started) / 1000);
          res.writeHead(status, ures.statusMessage, copyResponseHeaders(ures.rawHeaders));
          ures.pipe(res);
          ures.on('error', () => res.destroy());
        });
        creq.on('error', (e: NodeJS.ErrnoException) => {
          const outcome: Outcome = e instanceof AttemptTimeout ? 'timeout' : connected ? 'reset' : 'connect-failure';
          if (!settle(outcome)) {
            if (res.headersSent) res.destroy();
            return;
          }
          if (retry(outcome)) return;
          if (done) return;
          finish();
          const [status, reason] = outcome === 'timeout' ? [504, 'TIMEOUT'] : outcome === 'reset' ? [502, 'UPSTREAM_RESET'] : [503, 'CONNECT_FAILURE'];
          this.metrics.proxyError('outbound', service, reason);
          this.metrics.request('outbound', source, service, status, (performance.now() - started) / 1000);
          this.log.debug({ service, endpoint: key, err: e.code ?? e.message }, 'upstream attempt failed');
          sendError(res, status, reason, `${service} (${key}): ${e instanceof AttemptTimeout ? 'timed out' : e.code ?? e.message}`);
        });
        if (body) creq.end(body);
        else if (!hasBody) creq.end();
        else req.pipe(creq);
      };
      attempt(0, null);
    };

    if (!hasBody || !bufferable) return run(null);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => run(Buffer.concat(chunks)));
    req.on('error', () => res.destroy());
  }
}

function matchRule(rules: readonly CompiledRule[], method: string, path: string, raw: string[]): CompiledRule | null {
  for (const r of rules) {
    if (r.path !== null && path !== r.path) continue;
    if (r.pathPrefix !== null && !path.startsWith(r.pathPrefix)) continue;
    if (r.methods !== null && !r.methods.has(method)) continue;
    let ok = true;
    for (const [name, value] of r.headers) {
      if (headerValue(raw, name) !== value) {
        ok = false;
        break;
      }
    }
    if (ok) return r;
  }
  return null;
}
