// Inbound L7: requests arriving on an authenticated mTLS connection are checked one by one against
// the service's access policy, on the path normalized once; the local instance receives exactly
// that path, without any identity header the caller sent, and with the caller's verified identity.
import http from 'node:http';
import type tls from 'node:tls';
import type { Logger } from '../../shared/log.js';
import { forwardTarget, isPathError, normalizeTarget } from '../policy/normalize-path.js';
import type { PeerInfo } from './inbound.js';
import type { ProxyMetrics } from './metrics.js';
import { copyRequestHeaders, copyResponseHeaders, sendError, SERVER_LIMITS } from './http-common.js';

export class InboundHttp {
  private readonly server: http.Server;
  private readonly peers = new WeakMap<object, PeerInfo>();
  // One keep-alive pool to local instances; they are on this host, so no TLS.
  private readonly local = new http.Agent({ keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, scheduling: 'lifo' });

  constructor(
    private readonly metrics: ProxyMetrics,
    private readonly log: Logger,
  ) {
    this.server = http.createServer({ ...SERVER_LIMITS }, (req, res) => this.onRequest(req, res));
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable) socket.end(`HTTP/1.1 400 Bad Request\r\nx-hostmesh-error: BAD_REQUEST\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      else socket.destroy();
      this.log.debug({ err: err.code ?? err.message }, 'malformed inbound request');
    });
  }

  accept(socket: tls.TLSSocket, peer: PeerInfo): void {
    this.peers.set(socket, peer);
    this.server.emit('connection', socket);
  }

  close(): void {
    this.local.destroy();
    this.server.closeAllConnections();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    const peer = this.peers.get(req.socket);
    if (!peer) {
      res.destroy();
      return;
    }
    const svc = peer.service;
    const method = req.method ?? 'GET';
    const target = normalizeTarget(method, req.url ?? '/');
    if (typeof target === 'string' && isPathError(target)) {
      this.metrics.proxyError('inbound', svc.name, target);
      return sendError(res, 400, target, `request path refused: ${target}`);
    }
    const nt = target as Exclude<typeof target, string>;
    const decision = svc.access.decide(peer.source, method, nt.path);
    if (!decision.allowed || decision.wouldDeny) this.metrics.denied(svc.name, decision.reason, decision.audit ? 'audit' : 'enforce');
    if (!decision.allowed) {
      this.metrics.request('inbound', peer.source, svc.name, 403, (performance.now() - started) / 1000);
      return sendError(res, 403, decision.reason, `${peer.spiffeId} may not ${method} ${nt.path ?? ''} on ${svc.name}`);
    }
    const headers = copyRequestHeaders(req.rawHeaders, true);
    headers.push('x-hostmesh-source', peer.spiffeId, 'x-forwarded-client-cert', `URI=${peer.spiffeId}`);
    const up = http.request({
      host: svc.host,
      port: svc.port,
      method,
      path: forwardTarget(nt),
      headers,
      agent: this.local,
      setHost: false,
    });
    up.on('response', (ur) => {
      this.metrics.request('inbound', peer.source, svc.name, ur.statusCode ?? 0, (performance.now() - started) / 1000);
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, copyResponseHeaders(ur.rawHeaders));
      ur.pipe(res);
      ur.on('error', () => res.destroy());
    });
    up.on('error', (e: NodeJS.ErrnoException) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // 503 tells the calling agent this instance cannot serve now, which it may retry elsewhere.
      const reason = e.code === 'ECONNREFUSED' ? 'LOCAL_UNAVAILABLE' : 'LOCAL_RESET';
      this.metrics.proxyError('inbound', svc.name, reason);
      this.metrics.request('inbound', peer.source, svc.name, 503, (performance.now() - started) / 1000);
      sendError(res, 503, reason, `local instance of ${svc.name}: ${e.code ?? e.message}`);
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  }
}
