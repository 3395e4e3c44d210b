// A fake hostmesh control plane for agent tests: HTTPS with a cert from a real test CA (served as
// leaf + root, like the server), POST /v1/join, and the agent WebSocket with client-cert auth.
// Tests drive it directly: push frames, read what the agent sent, refuse joins or sockets.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { pino, type Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { CertificateAuthority } from '../../server/ca/index.js';
import { hashOf } from '../../shared/canonical.js';
import { resolveHostConfig, type HostConfig, type HostConfigInput } from '../../shared/host-config.js';
import { parseSpiffeId } from '../../shared/identity.js';
import { AGENT_WS_PATH, JOIN_PATH, type JoinRequest, type JoinResponse, type Slice } from '../../shared/protocol.js';

export const TRUST_DOMAIN = 'hostmesh.local';

export interface Refusal {
  status: number;
  code: string;
  message: string;
}

// Any received frame; tests narrow by `type`.
export type Received = { type: string; [k: string]: any };

export interface FakeServer {
  url: string;
  port: number;
  ca: CertificateAuthority;
  rootPem: string;
  fingerprint: string;
  tokens: Set<string>;
  joins: JoinRequest[];
  /** Answers for the next joins, in order; afterwards the normal behaviour resumes. */
  joinAnswers: Refusal[];
  /** TCP connections accepted (pinning, join POST, sockets). */
  connections: number;
  /** Upgrade attempts answered with this instead of a WebSocket. */
  refuseSockets: Refusal | null;
  /** Sign CSRs that arrive on the socket (default true). */
  answerCsrs: boolean;
  /** Answer CSRs with this error instead. */
  csrRefusal: { code: string; message: string } | null;
  certTtlMs: number;
  received: Received[];
  sockets: number;
  connected(): boolean;
  send(msg: unknown): void;
  /** The next received message (from now, or already received and unseen with `fromStart`) matching `pred`. */
  waitFor(pred: (m: Received) => boolean, timeoutMs?: number, fromStart?: boolean): Promise<Received>;
  /** Drop the agent's socket (abruptly). */
  dropSocket(): void;
  /** Stop reading the agent's socket: no frames, no pongs, as if the server hung. */
  freeze(): void;
  /** Stop listening and drop every connection; start() again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  cleanup(): Promise<void>;
}

export function tempDir(prefix = 'hostmesh-agent-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function testLog(): Logger {
  return pino({ level: process.env['HOSTMESH_TEST_LOG'] ?? 'silent' }, pino.destination(2));
}

export async function startFakeServer(opts: { certTtlMs?: number } = {}): Promise<FakeServer> {
  const dir = tempDir('hostmesh-fake-server-');
  const ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'), TRUST_DOMAIN);
  const tlsCert = await ca.issueServerCert({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], ttlMs: 24 * 3600_000 });
  let agentWs: WebSocket | null = null;
  let server: https.Server | null = null;
  const rawSockets = new Set<Socket>();
  const waiters: Array<{ pred: (m: Received) => boolean; resolve: (m: Received) => void }> = [];
  const hosts = new Set<string>();

  const fake: FakeServer = {
    url: '',
    port: 0,
    ca,
    rootPem: ca.rootPem,
    fingerprint: ca.fingerprint,
    tokens: new Set(['good-token']),
    joins: [],
    joinAnswers: [],
    connections: 0,
    refuseSockets: null,
    answerCsrs: true,
    csrRefusal: null,
    certTtlMs: opts.certTtlMs ?? 3600_000,
    received: [],
    sockets: 0,
    connected: () => agentWs !== null && agentWs.readyState === agentWs.OPEN,
    send(msg) {
      if (!agentWs) throw new Error('no agent connected');
      agentWs.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
    },
    waitFor(pred, timeoutMs = 10_000, fromStart = false) {
      if (fromStart) {
        const hit = fake.received.find(pred);
        if (hit) return Promise.resolve(hit);
      }
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (m: Received) => (clearTimeout(t), resolve(m)) };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`timed out waiting for a message; got: ${fake.received.map((m) => m.type).join(', ')}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    dropSocket() {
      agentWs?.terminate();
    },
    freeze() {
      (agentWs as unknown as { _socket: Socket } | null)?._socket.pause();
      agentWs = null;
    },
    async stop() {
      const s = server;
      server = null;
      if (!s) return;
      for (const c of wss.clients) c.terminate();
      for (const r of rawSockets) r.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async start() {
      server = https.createServer({ cert: tlsCert.chainPem, key: tlsCert.keyPem, ca: ca.rootPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
        void handleHttp(req, res);
      });
      server.on('connection', (s: Socket) => {
        fake.connections++;
        rawSockets.add(s);
        s.once('close', () => rawSockets.delete(s));
      });
      server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => handleUpgrade(req, socket, head));
      await new Promise<void>((resolve) => server!.listen(fake.port, '127.0.0.1', () => resolve()));
      fake.port = (server.address() as AddressInfo).port;
      fake.url = `https://127.0.0.1:${fake.port}`;
    },
    async cleanup() {
      await fake.stop();
      wss.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };

  const wss = new WebSocketServer({ noServer: true });

  async function handleHttp(req: IncomingMessage, res: import('node:http').ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== JOIN_PATH) return reply(404, { error: { code: 'HM_ERR_ROUTE_NOT_FOUND', message: 'no such route' } });
    let text = '';
    for await (const chunk of req) text += chunk;
    const body = JSON.parse(text) as JoinRequest;
    fake.joins.push(body);
    const forced = fake.joinAnswers.shift();
    if (forced) return reply(forced.status, { error: { code: forced.code, message: forced.message } });
    if (!fake.tokens.has(body.token)) return reply(401, { error: { code: 'HM_ERR_TOKEN_INVALID', message: 'join token is unknown or expired' } });
    if (hosts.has(body.host)) return reply(409, { error: { code: 'HM_ERR_HOST_EXISTS', message: `host ${body.host} exists` } });
    try {
      const issued = await ca.signCsr(body.csr, { identity: { trustDomain: TRUST_DOMAIN, kind: 'host', name: body.host }, ttlMs: fake.certTtlMs });
      hosts.add(body.host);
      const answer: JoinResponse = {
        host: body.host,
        spiffeId: issued.spiffeId,
        certPem: issued.certPem,
        chainPem: issued.chainPem,
        notAfter: issued.notAfter.toISOString(),
        caBundle: [ca.rootPem],
        trustDomain: TRUST_DOMAIN,
      };
      reply(201, answer);
    } catch (e) {
      reply(400, { error: { code: 'HM_ERR_CSR_INVALID', message: (e as Error).message } });
    }
  }

  function handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const refuse = (r: Refusal): void => {
      const body = JSON.stringify({ error: { code: r.code, message: r.message } });
      socket.end(`HTTP/1.1 ${r.status} Refused\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    };
    if (req.url !== AGENT_WS_PATH) return refuse({ status: 404, code: 'HM_ERR_ROUTE_NOT_FOUND', message: 'no such path' });
    if (fake.refuseSockets) return refuse(fake.refuseSockets);
    const tlsSocket = socket as TLSSocket;
    const peer = tlsSocket.getPeerCertificate();
    if (!tlsSocket.authorized || !peer.raw) return refuse({ status: 401, code: 'HM_ERR_UNAUTHENTICATED', message: 'a host certificate is required' });
    const uri = (new X509Certificate(peer.raw).subjectAltName ?? '').replace(/^URI:/, '');
    const id = parseSpiffeId(uri);
    if (!id || id.kind !== 'host') return refuse({ status: 403, code: 'HM_ERR_FORBIDDEN', message: 'not a host certificate' });
    wss.handleUpgrade(req, socket, head, (ws) => {
      fake.sockets++;
      agentWs = ws;
      ws.on('close', () => {
        if (agentWs === ws) agentWs = null;
      });
      ws.on('message', (data: Buffer) => {
        let m: Received;
        try {
          m = JSON.parse(data.toString('utf8')) as Received;
        } catch {
          return;
        }
        fake.received.push(m);
        for (const w of [...waiters]) {
          if (w.pred(m)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(m);
          }
        }
        if (m.type === 'csr') void answerCsr(ws, m);
      });
    });
  }

  async function answerCsr(ws: WebSocket, m: Received): Promise<void> {
    if (!fake.answerCsrs) return;
    if (fake.csrRefusal) {
      ws.send(JSON.stringify({ type: 'error', code: fake.csrRefusal.code, message: fake.csrRefusal.message, ref: m['id'] }));
      return;
    }
    const issued = await fake.ca.signCsr(m['csr'] as string, {
      identity: { trustDomain: TRUST_DOMAIN, kind: m['kind'] as 'host' | 'service', name: m['name'] as string },
      ttlMs: fake.certTtlMs,
      ...(m['kind'] === 'service' ? { dnsNames: [`${m['name'] as string}.${TRUST_DOMAIN}`] } : {}),
    });
    ws.send(JSON.stringify({ type: 'cert', id: m['id'], kind: m['kind'], name: m['name'], certPem: issued.certPem, chainPem: issued.chainPem, notAfter: issued.notAfter.toISOString() }));
  }

  await fake.start();
  return fake;
}

// ---- slices and configs ------------------------------------------------------------------------

export function makeSlice(rootPem: string, upstreams: string[], services: string[] = ['web']): Slice {
  return {
    mesh: { trustDomain: TRUST_DOMAIN, mtls: 'strict', defaultAccess: 'deny', certTTL: '24h', accessLog: false },
    caBundle: [rootPem],
    services: Object.fromEntries(services.map((s) => [s, { spec: { protocol: 'http', port: 8080 }, accessPolicy: null }])),
    upstreams: Object.fromEntries(
      upstreams.map((u) => [u, { spec: { protocol: 'tcp', port: 9000 }, route: null, trafficPolicy: null, endpoints: [{ host: 'db-1', address: '127.0.0.1', port: 15443, labels: {}, healthy: true }] }]),
    ),
  };
}

export function snapshot(revision: number, slice: unknown): { type: 'snapshot'; revision: number; hash: string; slice: unknown } {
  return { type: 'snapshot', revision, hash: hashOf(slice), slice };
}

// Every agent now binds its inbound listener, and test files run in parallel: give each config a
// port of its own rather than the shared default 15443.
let nextInbound = 20000 + (process.pid % 1000) * 20;

export function agentConfig(fake: FakeServer, stateDir: string, extra: Partial<HostConfigInput> = {}): HostConfig {
  return resolveHostConfig({
    server: fake.url,
    caFingerprint: fake.fingerprint,
    token: 'good-token',
    name: 'web-1',
    address: '127.0.0.1',
    stateDir,
    inbound: `127.0.0.1:${nextInbound++}`,
    admin: '127.0.0.1:0',
    services: [{ name: 'web', port: 8080 }],
    ...extra,
  });
}

export async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function getText(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}
