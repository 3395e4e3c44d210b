// Traffic helpers for the data-plane end-to-end tests: a local service that echoes what it received
// (and can be told to be slow, to fail, or to drop connections), a TCP echo with half-close, an HTTP
// client and load generator that never throw and never hang, raw probes of an agent's inbound
// listener, and certificates made by hand for the refusal tests.
import { readFileSync } from 'node:fs';
import { createHash, randomBytes, webcrypto } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { x509 } from '../../shared/x509.js';
import type { TestServer } from './server.js';
import { waitFor, type TestAgent } from './agent.js';

// ---- cleanup ------------------------------------------------------------------------------------

/** Things to undo, in reverse order of creation; every step runs even if one fails. */
export class Cleanup {
  readonly #steps: Array<() => unknown> = [];
  add(step: () => unknown): void {
    this.#steps.push(step);
  }
  async run(): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()!;
      try {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.resolve(step()), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
        clearTimeout(timer);
      } catch {
        /* best effort: the next step still runs */
      }
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- the header echo: the local service of the tests ---------------------------------------------

export interface SeenRequest {
  at: number;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
}

/** What the echo answers (as JSON): who answered and what it received. */
export interface EchoReply {
  name: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  bodyBytes: number;
  bodySha256: string;
  pad?: string;
}

export interface HeaderEcho {
  readonly name: string;
  readonly ip: string;
  readonly port: number;
  readonly server: http.Server;
  /** Requests that reached the handler (any mode). */
  requests: number;
  /** Requests being handled right now (waiting out a delay, say). */
  inFlight: number;
  /** Every request that reached the handler. */
  readonly seen: SeenRequest[];
  /** Times at which a request was answered 2xx. */
  readonly served: number[];
  /** Connections and requests dropped while in 'close' mode, with their times. */
  readonly attempts: number[];
  /** Answer every request after `ms`. */
  setDelay(ms: number): void;
  /** Answer every request with this status (null: 200). */
  setStatus(code: number | null): void;
  /**
   * 'close': as if the process died but its port kept answering SYNs: open connections are
   * destroyed at once, and every new one is accepted and destroyed (counted in `attempts`).
   */
  setMode(mode: 'ok' | 'close'): void;
  close(): Promise<void>;
}

const MAX_PAD = 8 * 1024 * 1024;

/**
 * An HTTP service on `ip:port` that answers every request with JSON {name, method, url, headers,
 * rawHeaders, bodyBytes, bodySha256}; `?pad=N` adds N bytes of padding to the reply.
 */
export async function startHeaderEcho(ip: string, port: number, name: string): Promise<HeaderEcho> {
  let delay = 0;
  let status: number | null = null;
  let mode: 'ok' | 'close' = 'ok';
  const sockets = new Set<net.Socket>();
  const server = http.createServer({ keepAliveTimeout: 30_000 });
  const echo: HeaderEcho = {
    name,
    ip,
    port,
    server,
    requests: 0,
    inFlight: 0,
    seen: [],
    served: [],
    attempts: [],
    setDelay: (ms) => void (delay = ms),
    setStatus: (code) => void (status = code),
    setMode: (m) => {
      mode = m;
      if (m === 'close') for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  server.on('connection', (s: net.Socket) => {
    if (mode === 'close') {
      echo.attempts.push(Date.now());
      s.destroy();
      return;
    }
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    echo.requests++;
    echo.seen.push({ at: Date.now(), method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders });
    if (mode === 'close') {
      echo.attempts.push(Date.now());
      req.socket.destroy();
      return;
    }
    echo.inFlight++;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      echo.inFlight--;
    };
    res.once('close', finish);
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (d: Buffer) => {
      bytes += d.length;
      hash.update(d);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      const reply: EchoReply = {
        name,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        bodyBytes: bytes,
        bodySha256: hash.digest('hex'),
      };
      const q = (req.url ?? '').split('?')[1];
      const pad = q ? Number(new URLSearchParams(q).get('pad') ?? 0) : 0;
      if (Number.isInteger(pad) && pad > 0 && pad <= MAX_PAD) reply.pad = 'x'.repeat(pad);
      const send = (): void => {
        if (res.destroyed) return finish();
        const code = status ?? 200;
        const body = JSON.stringify(reply);
        res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-echo-name': name });
        res.end(body);
        if (code >= 200 && code < 300) echo.served.push(Date.now());
        finish();
      };
      if (delay > 0) {
        const t = setTimeout(send, delay);
        res.once('close', () => clearTimeout(t));
      } else {
        send();
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return echo;
}

// ---- TCP echo with half-close ----------------------------------------------------------------------

export interface TcpEcho {
  connections: number;
  close(): Promise<void>;
}

/** The trailer the TCP echo sends after the client half-closed having sent `n` bytes. */
export const eofTrailer = (n: number): string => `\n[eof after ${n} bytes]\n`;

/**
 * Echoes every byte back (with backpressure); when the client half-closes, it answers
 * `eofTrailer(n)` and then closes its side. So a client that end()s must still get the trailer.
 */
export async function startTcpEcho(ip: string, port: number): Promise<TcpEcho> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    echo.connections++;
    sockets.add(s);
    let n = 0;
    s.on('data', (d: Buffer) => {
      n += d.length;
      if (!s.write(d)) s.pause();
    });
    s.on('drain', () => s.resume());
    s.on('end', () => s.end(eofTrailer(n)));
    s.on('error', () => undefined);
    s.once('close', () => sockets.delete(s));
  });
  const echo: TcpEcho = {
    connections: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return echo;
}

/**
 * A TCP client with its received bytes collected. `closed` resolves (never rejects) when the
 * connection is fully closed, with the error if any.
 */
export interface TcpClient {
  socket: net.Socket;
  connected: Promise<boolean>;
  received(): Buffer;
  /** Resolves when `received()` holds at least `n` bytes; throws after `timeoutMs`. */
  waitBytes(n: number, timeoutMs?: number): Promise<Buffer>;
  /** Resolves when the peer ended its side (EOF) or the connection closed. */
  ended: Promise<void>;
  closed: Promise<{ error: string | null }>;
}

export function tcpClient(host: string, port: number): TcpClient {
  const socket = net.connect({ host, port, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  let total = 0;
  let error: string | null = null;
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    total += d.length;
  });
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  let eof = false;
  socket.once('end', () => (eof = true));
  const connected = new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true));
    socket.once('close', () => resolve(false));
  });
  const ended = new Promise<void>((resolve) => {
    socket.once('end', () => resolve());
    socket.once('close', () => resolve());
  });
  const closed = new Promise<{ error: string | null }>((resolve) => socket.once('close', () => resolve({ error })));
  const received = (): Buffer => Buffer.concat(chunks, total);
  return {
    socket,
    connected,
    received,
    ended,
    closed,
    waitBytes: async (n, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (total < n) {
        if (socket.destroyed || eof) throw new Error(`connection to ${host}:${port} ${eof ? 'ended by the peer' : 'closed'} after ${total} of ${n} bytes (${error ?? 'no error'})`);
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${n} bytes from ${host}:${port} (got ${total})`);
        await sleep(5);
      }
      return received();
    },
  };
}

// ---- HTTP client -------------------------------------------------------------------------------------

export interface HttpResult {
  /** 0 when no response came (connection error, timeout). */
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  /** The body parsed as JSON, or null. */
  json: any;
  ms: number;
  /** Why there is no response (ECONNRESET, timeout…), or null. */
  error: string | null;
}

export interface HttpRequestOptions {
  host: string;
  port: number;
  method?: string;
  /** Sent verbatim as the request-target (no URL normalization on this side). */
  path?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: Buffer | string;
  /** Send the body as these chunks (chunked transfer-encoding). */
  chunks?: Array<Buffer | string>;
  /** A keep-alive agent to reuse connections; default: a fresh connection. */
  agent?: http.Agent | false;
  timeoutMs?: number;
}

/** One request; resolves with what happened, never rejects, never hangs past `timeoutMs` (default 10 s). */
export function httpRequest(o: HttpRequestOptions): Promise<HttpResult> {
  const t0 = performance.now();
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: Omit<HttpResult, 'ms' | 'text' | 'json'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const text = r.body.toString('utf8');
      let json: unknown = null;
      try {
        json = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON */
      }
      resolve({ ...r, text, json, ms: performance.now() - t0 });
    };
    let req: http.ClientRequest;
    try {
      req = http.request({ host: o.host, port: o.port, method: o.method ?? 'GET', path: o.path ?? '/', headers: o.headers ?? {}, agent: o.agent ?? false });
    } catch (e) {
      resolve({ status: 0, headers: {}, body: Buffer.alloc(0), text: '', json: null, ms: 0, error: `request not sent: ${(e as Error).message}` });
      return;
    }
    const timer = setTimeout(() => {
      req.destroy(new Error(`timeout after ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error: null }));
      res.on('error', (e: NodeJS.ErrnoException) => done({ status: 0, headers: res.headers, body: Buffer.concat(chunks), error: `response broken: ${e.code ?? e.message}` }));
      res.on('aborted', () => done({ status: 0, headers: res.headers, body: Buffer.concat(chunks), error: 'response aborted' }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => done({ status: 0, headers: {}, body: Buffer.alloc(0), error: e.code ?? e.message }));
    if (o.chunks) {
      for (const c of o.chunks) req.write(c);
      req.end();
    } else {
      req.end(o.body);
    }
  });
}

/** A one-line description of a result, for assertion messages. */
export function describeResult(r: HttpResult): string {
  if (r.status === 0) return `no response (${r.error}) after ${r.ms.toFixed(0)} ms`;
  const reason = r.headers['x-hostmesh-error'];
  return `${r.status}${reason ? ` x-hostmesh-error=${String(reason)}` : ''} after ${r.ms.toFixed(0)} ms: ${r.text.slice(0, 300)}`;
}

/** The reason-code header of a mesh-generated answer. */
export function meshError(r: HttpResult): string | undefined {
  const v = r.headers['x-hostmesh-error'];
  return Array.isArray(v) ? v.join(',') : v;
}

// ---- load ------------------------------------------------------------------------------------------

export interface Sample {
  start: number;
  end: number;
  status: number;
  /** The echo's name, when the answer came from an echo. */
  name: string | null;
  error: string | null;
  reason: string | null;
}

export interface Load {
  readonly samples: Sample[];
  /** Stop the workers (each finishes its request in flight) and close the connections. */
  stop(): Promise<Sample[]>;
}

/**
 * `concurrency` workers, each on its own keep-alive connection, sending requests back to back
 * until stopped. Every request is bounded by `timeoutMs` (default 5 s).
 */
export function startLoad(o: { host: string; port: number; concurrency: number; path?: string | (() => string); method?: string; headers?: http.OutgoingHttpHeaders; timeoutMs?: number; pauseMs?: number }): Load {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });
  const samples: Sample[] = [];
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped) {
      const start = Date.now();
      const path = typeof o.path === 'function' ? o.path() : (o.path ?? '/');
      const r = await httpRequest({ host: o.host, port: o.port, method: o.method ?? 'GET', path, headers: o.headers ?? {}, agent, timeoutMs: o.timeoutMs ?? 5000 });
      samples.push({ start, end: Date.now(), status: r.status, name: typeof r.json?.name === 'string' ? r.json.name : null, error: r.error, reason: meshError(r) ?? null });
      if (o.pauseMs) await sleep(o.pauseMs);
    }
  };
  const workers = Array.from({ length: o.concurrency }, () => worker());
  return {
    samples,
    stop: async () => {
      stopped = true;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(workers), new Promise((r) => (timer = setTimeout(r, (o.timeoutMs ?? 5000) + 2000)))]);
      clearTimeout(timer);
      agent.destroy();
      return samples;
    },
  };
}

export function isFailure(s: Sample): boolean {
  return s.status !== 200;
}

/** Count samples by echo name (null: no echo answered). */
export function countByName(samples: readonly Sample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of samples) {
    const k = s.name ?? `(status ${s.status}${s.error ? ` ${s.error}` : ''}${s.reason ? ` ${s.reason}` : ''})`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** A summary of the failures among samples, for assertion messages. */
export function failureSummary(samples: readonly Sample[]): string {
  const f = samples.filter(isFailure);
  return `${f.length}/${samples.length} failed: ${JSON.stringify(countByName(f))}`;
}

// ---- mesh setup --------------------------------------------------------------------------------------

/** POST /v1/apply; returns the new revision. */
export async function apply(server: TestServer, documents: unknown[]): Promise<number> {
  const r = await server.api('POST', '/v1/apply', { documents });
  if (r.status !== 200) throw new Error(`apply failed (${r.status}): ${JSON.stringify(r.body)}`);
  return r.body.revision as number;
}

/**
 * Apply, then wait until each of `agents` has applied a revision at least as new. Only agents
 * whose slice the change touches are pushed anything: an AccessPolicy lives in the callee's slice,
 * a Route or TrafficPolicy in the callers', the Mesh in everyone's.
 */
export async function applyAndWait(server: TestServer, documents: unknown[], agents: readonly TestAgent[], timeoutMs = 10_000): Promise<number> {
  const rev = await apply(server, documents);
  await Promise.all(
    agents.map((a) =>
      waitFor(`${a.spec.name} at revision ${rev}`, async () => ((await a.configDump())?.appliedRevision ?? -1) >= rev, timeoutMs),
    ),
  );
  return rev;
}

/** Wait until `agent` sees `count` healthy endpoints of `service` (and so listens for it). */
export async function waitEndpoints(agent: TestAgent, service: string, count: number, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    `${agent.spec.name} to see ${count} healthy endpoint(s) of ${service}`,
    async () => {
      const d = await agent.configDump();
      const eps = (d?.slice?.upstreams?.[service]?.endpoints ?? []) as Array<{ healthy: boolean }>;
      const healthy = eps.filter((e) => e.healthy).length;
      if (healthy === count) return true;
      throw new Error(`${healthy} healthy of ${eps.length}`);
    },
    timeoutMs,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n--- ${agent.spec.name} output (tail) ---\n${agent.output().slice(-1500)}`);
  });
}

/** The tail of each agent's output, for a failing assertion's message. */
export function agentTails(agents: readonly TestAgent[], chars = 800): string {
  return agents.map((a) => `\n--- ${a.spec.name} (tail) ---\n${a.output().slice(-chars)}`).join('');
}

// ---- raw probes of an inbound listener ---------------------------------------------------------------------

export interface ProbeResult {
  /** The TCP connection was established (so a refusal came from TLS or above, not ECONNREFUSED). */
  tcpConnected: boolean;
  /** The TLS client saw its handshake complete (in TLS 1.3 the server may still refuse after this). */
  secureConnected: boolean;
  /** Everything received (decrypted, for TLS). */
  received: string;
  /** The connection closed within the bound. */
  closed: boolean;
  error: string | null;
  /** The peer certificate the server presented (TLS only). */
  peerCert: tls.PeerCertificate | null;
}

/**
 * Connect to host:port (plain TCP when `tlsOptions` is null), send `request` once connected, and
 * collect what comes back until the connection closes or `timeoutMs` passes.
 */
export function probe(host: string, port: number, tlsOptions: tls.ConnectionOptions | null, request: string, timeoutMs = 5000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const r: ProbeResult = { tcpConnected: false, secureConnected: false, received: '', closed: false, error: null, peerCert: null };
    let socket: net.Socket;
    if (tlsOptions) {
      const raw = net.connect({ host, port });
      raw.once('connect', () => (r.tcpConnected = true));
      raw.on('error', (e: NodeJS.ErrnoException) => (r.error ??= e.code ?? e.message));
      const t = tls.connect({ ...tlsOptions, socket: raw });
      t.once('secureConnect', () => {
        r.secureConnected = true;
        r.peerCert = t.getPeerCertificate();
        t.write(request);
      });
      socket = t;
    } else {
      socket = net.connect({ host, port });
      socket.once('connect', () => {
        r.tcpConnected = true;
        socket.write(request);
      });
    }
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (r.received += d));
    socket.on('error', (e: NodeJS.ErrnoException) => (r.error ??= e.code ?? e.message));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(r);
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      r.closed = true;
      resolve(r);
    });
  });
}

// ---- certificates made by hand ----------------------------------------------------------------------------

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const lines = Buffer.from(der as ArrayBuffer).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export interface LeafOptions {
  /** The issuer: a CA cert and its PKCS#8 key (e.g. the mesh root in <dataDir>/ca/). */
  issuerCertPem: string;
  issuerKeyPem: string;
  uris: string[];
  dnsNames?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Default: clientAuth and serverAuth. */
  usages?: Array<'clientAuth' | 'serverAuth'>;
  commonName?: string;
}

/** A P-256 leaf signed by the given issuer, shaped like the mesh's own leaves unless told otherwise. */
export async function makeLeafCert(o: LeafOptions): Promise<{ certPem: string; keyPem: string }> {
  const issuerCert = new x509.X509Certificate(pemToDer(o.issuerCertPem));
  const signingKey = await webcrypto.subtle.importKey('pkcs8', pemToDer(o.issuerKeyPem), EC, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const now = Date.now();
  const usages = o.usages ?? ['clientAuth', 'serverAuth'];
  const ski = issuerCert.getExtension(x509.SubjectKeyIdentifierExtension);
  const names = [...o.uris.map((value) => ({ type: 'url' as const, value })), ...(o.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value }))];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(usages.map((u) => x509.ExtendedKeyUsage[u]), false),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (ski) extensions.push(new x509.AuthorityKeyIdentifierExtension(ski.keyId, false));
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '41' + randomBytes(15).toString('hex'),
    subject: [{ CN: [o.commonName ?? 'test-leaf'] }],
    issuer: issuerCert.subjectName,
    notBefore: o.notBefore ?? new Date(now - 60_000),
    notAfter: o.notAfter ?? new Date(now + 3_600_000),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions,
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: toPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY') };
}

/** The URI SANs of a peer certificate as node:tls reports it. */
export function urisOf(cert: tls.PeerCertificate | null): string[] {
  return (cert?.subjectaltname ?? '')
    .split(', ')
    .filter((x) => x.startsWith('URI:'))
    .map((x) => x.slice(4));
}

/** W3C traceparent, version 00. */
export const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Established TCP connections to `to`:`port` on this host, read from /proc/net/tcp (any source address). */
export function establishedTo(to: string, port: number): number {
  const hex = (ip: string): string => Buffer.from(ip.split('.').map(Number).reverse()).toString('hex').toUpperCase();
  const remote = `${hex(to)}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[2] === remote && f[3] === '01').length;
}
