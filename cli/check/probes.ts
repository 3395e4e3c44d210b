// The network facts `hostmesh check` needs, each one request with its own deadline so a silent
// peer costs seconds, not a hung command: the server's /healthz over TLS verified against the
// pinned root (for its Date header), the agent's local admin endpoint, and whether a port is free.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { hostPortOf } from '../../agent/control/pin.js';

export const PROBE_TIMEOUT_MS = 5_000;

export interface ServerAnswer {
  status: number;
  /** The server's clock from its Date header (1 s resolution), in ms. */
  serverTime: number | null;
  /** Our clock halfway through the request: the best guess of when the server stamped it. */
  localMidpoint: number;
}

/** GET `path` on the server, trusting only `rootPem`, with normal hostname checks. */
export function getServer(serverUrl: string, path: string, rootPem: string, now: () => number = Date.now): Promise<ServerAnswer> {
  const { host, port } = hostPortOf(serverUrl);
  return new Promise((resolve, reject) => {
    const sent = now();
    const req = https.get(
      { host, port, path, ca: rootPem, agent: false, timeout: PROBE_TIMEOUT_MS, ...(net.isIP(host) ? {} : { servername: host }), headers: { connection: 'close' } },
      (res) => {
        const received = now();
        res.resume();
        const date = res.headers.date ? Date.parse(res.headers.date) : NaN;
        // The header is truncated to the second: its middle is the best estimate.
        resolve({ status: res.statusCode ?? 0, serverTime: Number.isNaN(date) ? null : date + 500, localMidpoint: Math.round((sent + received) / 2) });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
  });
}

/** GET a path of the agent's admin endpoint: status and body, or null when nothing answers. */
export function getAdmin(admin: { host: string; port: number }, path: string): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const req = http.get({ host: admin.host, port: admin.port, path, agent: false, timeout: PROBE_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

export type PortState = { free: true } | { free: false; code: string };

/** Bind and release at once: free, or the errno that says why not (EADDRINUSE, EADDRNOTAVAIL, EACCES). */
export function probePort(host: string, port: number): Promise<PortState> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ free: false, code: e.code ?? e.message }));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve({ free: true })));
  });
}
