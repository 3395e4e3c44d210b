// A proxy made of nothing but the HTTP/1.1 connection loop (agent/proxy/http1/connection-loop.ts)
// and the smallest side that can drive it, between raw sockets on loopback: what the loop does to
// bytes on the wire can be checked without agents, TLS, policy or routing in the way.
//
// The side forwards every request to one upstream through the inbound side's pool (LocalPool), as
// InboundSession does, and answers `/deny…` itself (as a policy denial would). Whatever the side
// is told by the loop is kept in `events`, so a test can check what the loop reported as well as
// what went over the wire.
import { once } from 'node:events';
import net from 'node:net';
import type { RequestHead, ResponseHead } from '../../agent/http/head-parser.js';
import { removeHeader, serializeRequestHead } from '../../agent/http/head-writer.js';
import { Http1Session } from '../../agent/proxy/http1/connection-loop.js';
import { stripForForward } from '../../agent/proxy/http1/forward-headers.js';
import { LocalPool } from '../../agent/proxy/http1/local-pool.js';
import type { UpstreamConn } from '../../agent/proxy/http1/upstream-conn.js';

export interface LoopProxyOptions {
  /** The client inactivity timeout instead of the loop's 30 s (set on the socket the loop was given). */
  idleMs?: number;
}

export class TestSession extends Http1Session {
  private headStr = '';
  private retried = false;
  /** The largest write buffer the loop left on the client socket (the bound on what it holds for a slow reader). */
  maxClientBuffered = 0;

  constructor(
    client: net.Socket,
    private readonly proxy: LoopProxy,
  ) {
    super(client);
    if (proxy.options.idleMs !== undefined) client.setTimeout(proxy.options.idleMs);
    const socket = client as unknown as { write: (...args: unknown[]) => boolean };
    const write = socket.write.bind(client);
    socket.write = (...args: unknown[]): boolean => {
      const ok = write(...args);
      if (client.writableLength > this.maxClientBuffered) this.maxClientBuffered = client.writableLength;
      return ok;
    };
  }

  /** The upstream socket of the request in flight, to look at what the loop buffers on it. */
  get upstreamSocket(): net.Socket | null {
    return this.conn?.socket ?? null;
  }

  protected onRequest(head: RequestHead): void {
    const p = this.proxy;
    p.events.push(`request ${head.method} ${head.target}`);
    const h = head.headers;
    stripForForward(h);
    if (head.target.startsWith('/deny')) {
      this.respond(403, 'DENIED', 'denied by the test side');
      return;
    }
    // As both real sides do: we answer `100 Continue`, so the upstream is not asked.
    if (head.expectContinue) {
      removeHeader(h, 'expect');
      this.sendContinue();
    }
    if (head.version === '1.0' && head.keepAlive) h.push('connection', 'keep-alive');
    this.headStr = serializeRequestHead(head.method, head.target, head.version, h);
    this.retried = false;
    this.attach(p.pool.take('127.0.0.1', p.upstreamPort) ?? p.pool.connect('127.0.0.1', p.upstreamPort), this.headStr, null);
  }

  protected onResponse(rh: ResponseHead): boolean {
    this.proxy.events.push(`response ${rh.status}`);
    return true;
  }

  protected onUpstreamFailure(err: NodeJS.ErrnoException | null, stale: boolean, connected: boolean): void {
    const p = this.proxy;
    p.events.push(`failure stale=${stale} connected=${connected}`);
    if (stale && (this.head as RequestHead).body === 'none' && !this.retried) {
      this.retried = true;
      this.attach(p.pool.connect('127.0.0.1', p.upstreamPort), this.headStr, null);
      return;
    }
    this.respond(502, 'UPSTREAM_RESET', `upstream: ${err?.code ?? 'connection closed'}`);
  }

  protected onAbort(): void {
    this.proxy.events.push('abort');
  }

  protected onExchangeEnd(): void {
    this.proxy.events.push('end');
  }

  protected releaseConn(conn: UpstreamConn): void {
    this.proxy.pool.release(conn);
  }

  protected onClosed(): void {
    this.proxy.sessions.delete(this);
  }
}

/** A listener whose connections are each served by a TestSession, forwarding to `upstreamPort`. */
export class LoopProxy {
  readonly pool = new LocalPool();
  readonly sessions = new Set<TestSession>();
  readonly events: string[] = [];
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  private constructor(
    readonly upstreamPort: number,
    readonly options: LoopProxyOptions,
  ) {
    // allowHalfOpen as the agent's listeners have it: a client's FIN ends its requests, not our answers.
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      this.sessions.add(new TestSession(socket, this));
    });
  }

  static async start(upstreamPort: number, options: LoopProxyOptions = {}): Promise<LoopProxy> {
    const p = new LoopProxy(upstreamPort, options);
    p.server.listen(0, '127.0.0.1');
    await once(p.server, 'listening');
    p.port = (p.server.address() as net.AddressInfo).port;
    return p;
  }

  /** The one session serving a connection (most tests open a single one). */
  session(): TestSession {
    const [s] = this.sessions;
    if (s === undefined) throw new Error('no session');
    return s;
  }

  async close(): Promise<void> {
    for (const s of this.sessions) s.teardown();
    // A session that has ended its side waits for the client's FIN; do not wait with it.
    for (const s of this.sockets) s.destroy();
    this.pool.close();
    this.server.close();
    await once(this.server, 'close');
  }
}

/** A raw TCP server whose connections are handed to `serve` as Peers; it counts them. */
export class RawServer {
  readonly peers: Peer[] = [];
  private readonly server: net.Server;
  port = 0;

  private constructor(serve: (peer: Peer, index: number) => void | Promise<void>) {
    this.server = net.createServer((socket) => {
      const peer = new Peer(socket);
      const i = this.peers.push(peer) - 1;
      // A failing script shows up as the client's missing response; do not crash the run.
      Promise.resolve(serve(peer, i)).catch(() => socket.destroy());
    });
  }

  static async start(serve: (peer: Peer, index: number) => void | Promise<void>): Promise<RawServer> {
    const s = new RawServer(serve);
    s.server.listen(0, '127.0.0.1');
    await once(s.server, 'listening');
    s.port = (s.server.address() as net.AddressInfo).port;
    return s;
  }

  get connections(): number {
    return this.peers.length;
  }

  async close(): Promise<void> {
    for (const p of this.peers) p.socket.destroy();
    this.server.close();
    await once(this.server, 'close');
  }
}

export interface Head {
  /** The start line. */
  start: string;
  /** Status code (responses), 0 for requests. */
  status: number;
  /** Lower-case name → values joined with ', '. */
  headers: Record<string, string>;
  /** The head as received, start line to the blank line. */
  rawHead: string;
}

export interface Message extends Head {
  /** The body decoded (chunked framing removed). */
  body: Buffer;
  /** The body bytes as received (framing included). */
  rawBody: Buffer;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * One end of a TCP connection read as HTTP/1.1 messages, with a reader written for the tests (so
 * the parser under test does not check itself). Reads fail when the connection ends first.
 */
export class Peer {
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;
  private skipping = 0;
  private waiting: (() => void) | null = null;
  error: NodeJS.ErrnoException | null = null;
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, d.length);
        this.skipping -= n;
        d = d.subarray(n);
      }
      if (d.length > 0) this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.eof = true;
      this.wake();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset is how some failures are told; it ends the stream like a FIN.
      this.error = err;
      this.eof = true;
      this.wake();
    });
    // Not events.once: it would reject on the 'error' that often comes first.
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  static async connect(port: number): Promise<Peer> {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    await once(socket, 'connect');
    return new Peer(socket);
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Bytes received and not read yet. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Whether the other side has ended the stream (everything after buffered bytes is gone). */
  get ended(): boolean {
    return this.eof;
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  private async more(what: string): Promise<void> {
    if (this.eof) throw new Error(`connection ended while waiting for ${what} (${this.buf.length} bytes unread)`);
    await new Promise<void>((resolve) => (this.waiting = resolve));
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  async bytes(n: number): Promise<Buffer> {
    while (this.buf.length < n) await this.more(`${n} bytes`);
    return this.take(n);
  }

  /** Read and drop `n` bytes without keeping them (bodies too big to buffer in a test). */
  async skip(n: number): Promise<void> {
    const now = Math.min(n, this.buf.length);
    this.take(now);
    this.skipping = n - now;
    while (this.skipping > 0) await this.more(`${this.skipping} more bytes`);
  }

  private async line(): Promise<Buffer> {
    let i: number;
    while ((i = this.buf.indexOf('\r\n')) === -1) await this.more('a line');
    return this.take(i + 2);
  }

  /** Everything up to the end of the stream. */
  async rest(): Promise<Buffer> {
    while (!this.eof) await this.more('the end').catch(() => undefined);
    return this.take(this.buf.length);
  }

  /** The next head alone (the body, if any, is left unread). */
  async head(): Promise<Head> {
    let i: number;
    while ((i = this.buf.indexOf(CRLFCRLF)) === -1) await this.more('a head');
    const rawHead = this.take(i + 4).toString('latin1');
    const lines = rawHead.slice(0, -4).split('\r\n');
    const start = lines[0] as string;
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) {
      const c = l.indexOf(':');
      const k = l.slice(0, c).toLowerCase();
      const v = l.slice(c + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(start);
    return { start, status: m ? Number(m[1]) : 0, headers, rawHead };
  }

  private async chunked(): Promise<{ body: Buffer; rawBody: Buffer }> {
    const raw: Buffer[] = [];
    const data: Buffer[] = [];
    for (;;) {
      const sizeLine = await this.line();
      raw.push(sizeLine);
      const size = parseInt(sizeLine.toString('latin1'), 16);
      if (size === 0) break;
      const d = await this.bytes(size + 2);
      raw.push(d);
      data.push(d.subarray(0, size));
    }
    for (;;) {
      const l = await this.line();
      raw.push(l);
      if (l.length === 2) break;
    }
    return { body: Buffer.concat(data), rawBody: Buffer.concat(raw) };
  }

  /** The next response; `method` is the request's (HEAD responses have no body). 1xx come back on their own. */
  async response(method = 'GET'): Promise<Message> {
    const h = await this.head();
    const te = h.headers['transfer-encoding'];
    const cl = h.headers['content-length'];
    if (method === 'HEAD' || h.status < 200 || h.status === 204 || h.status === 304) return { ...h, body: Buffer.alloc(0), rawBody: Buffer.alloc(0) };
    if (te !== undefined) return { ...h, ...(await this.chunked()) };
    if (cl !== undefined) {
      const body = await this.bytes(Number(cl));
      return { ...h, body, rawBody: body };
    }
    const body = await this.rest();
    return { ...h, body, rawBody: body };
  }

  /** The next request (on an upstream's side of the proxy). */
  async request(): Promise<Message> {
    const h = await this.head();
    if (h.headers['transfer-encoding'] !== undefined) return { ...h, ...(await this.chunked()) };
    const body = await this.bytes(Number(h.headers['content-length'] ?? 0));
    return { ...h, body, rawBody: body };
  }

  /** Resolve once the other side has closed (FIN or reset), with what came before it; fail after `ms`. */
  async closesWithin(ms: number): Promise<Buffer> {
    return within(this.rest(), ms, 'the connection to close');
  }
}

/** `p`, or a failure naming what did not happen within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A response with a Content-Length body. */
export function ok(body = 'ok', extra = ''): string {
  return `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}
