// The local admin listener (plain HTTP, meant for loopback): /readyz for systemd and load balancers,
// /config_dump for people debugging, /metrics for Prometheus. Read-only; it changes nothing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { HmError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';

export interface AdminView {
  readiness(): { ready: boolean; reason: string };
  dump(): unknown;
  readonly registry: Registry;
}

export interface AdminServer {
  /** http://host:port actually bound (port 0 in the config picks a free one). */
  url: string;
  close(): Promise<void>;
}

export async function startAdminServer(listen: { host: string; port: number }, view: AdminView, log: Logger): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    void handle(req, res, view).catch((e: Error) => {
      log.error({ err: e.message, url: req.url }, 'admin request failed');
      if (!res.headersSent) reply(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // Admin requests are tiny; a slow client must not pin sockets.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'EADDRINUSE' ? 'the port is already in use' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.message;
      reject(new HmError('HM_ERR_STARTUP', `cannot listen on ${listen.host}:${listen.port} for the admin endpoint: ${why}; set admin: in the host config or --admin`, { cause: e }));
    });
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  log.info({ url: `http://${host}:${addr.port}` }, 'admin endpoint listening');
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, view: AdminView): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return reply(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
  }
  switch (path) {
    case '/readyz': {
      const r = view.readiness();
      return reply(res, r.ready ? 200 : 503, 'text/plain; charset=utf-8', r.ready ? 'ready\n' : `not ready: ${r.reason}\n`);
    }
    case '/config_dump':
      return reply(res, 200, 'application/json', JSON.stringify(view.dump(), null, 2) + '\n');
    case '/metrics':
      return reply(res, 200, view.registry.contentType, await view.registry.metrics());
    default:
      return reply(res, 404, 'text/plain; charset=utf-8', 'not found: try /readyz, /config_dump or /metrics\n');
  }
}

function reply(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
