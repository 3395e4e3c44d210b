// The control connection: one WebSocket to the server over mutual TLS (the host cert, the mesh root
// as the only CA). It says hello on every open, keeps itself alive with pings, and reconnects
// forever with full-jitter backoff; what the frames mean is the dispatcher's business.
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { Backoff } from '../../shared/backoff.js';
import type { Logger } from '../../shared/log.js';
import { AGENT_WS_PATH, MAX_FRAME_BYTES, type AgentMessage, type ErrorMsg, type HelloMsg } from '../../shared/protocol.js';
import { sleep } from '../clock.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import { hostPortOf } from './pin.js';

/**
 * What the agent sends. `error` (the answer to a frame it could not take) is declared in
 * shared/protocol.ts as server → agent only; the agent sends the same shape.
 */
export type OutgoingMessage = AgentMessage;

// The cap is low because the server's admission schedule, not the backoff, spreads a returning
// fleet (503 + Retry-After to a reserved second); the backoff only has to keep a down server from
// being hammered, and a 30 s cap left the last agents out for up to 50 s after a 5 s restart.
export const RECONNECT_BACKOFF = { baseMs: 1_000, capMs: 10_000 } as const;
export interface ConnectionTiming {
  /** Ping the server this often. */
  pingIntervalMs: number;
  /** No frame or pong for this long: the connection is dead. */
  deadAfterMs: number;
  /** A connection that stayed up this long resets the reconnect backoff. */
  stableAfterMs: number;
  handshakeTimeoutMs: number;
}
export const KEEPALIVE: Readonly<ConnectionTiming> = { pingIntervalMs: 15_000, deadAfterMs: 45_000, stableAfterMs: 10_000, handshakeTimeoutMs: 10_000 };

export interface ConnectionTls {
  cert: string;
  key: string;
  ca: readonly string[];
}

export interface ControlConnectionOptions {
  server: string;
  /** Read at each connect, so a renewed host cert or a new CA bundle is used from the next one on. */
  tls: () => ConnectionTls;
  hello: () => HelloMsg;
  log: Logger;
  metrics?: AgentMetrics;
  random?: () => number;
  timing?: Partial<ConnectionTiming>;
}

export function agentSocketUrl(server: string): string {
  const { host, port } = hostPortOf(server);
  return `wss://${host.includes(':') ? `[${host}]` : host}:${port}${AGENT_WS_PATH}`;
}

/** Emits 'connected' (after hello went out), 'disconnected', and 'frame' (data: Buffer). */
export class ControlConnection extends EventEmitter {
  readonly #opts: ControlConnectionOptions;
  readonly #timing: ConnectionTiming;
  readonly #backoff: Backoff;
  /** Set when the server gave this agent a time to come back (503 + Retry-After in a reconnect storm). */
  #retryAfterMs: number | null = null;
  readonly #abort = new AbortController();
  #ws: WebSocket | null = null;
  #connected = false;
  #loop: Promise<void> | null = null;

  constructor(opts: ControlConnectionOptions) {
    super();
    this.#opts = opts;
    this.#timing = { ...KEEPALIVE, ...opts.timing };
    this.#backoff = new Backoff({ ...RECONNECT_BACKOFF, ...(opts.random ? { random: opts.random } : {}) });
  }

  get isConnected(): boolean {
    return this.#connected;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    this.#ws?.close(1001, 'agent stopping');
    // A peer that never answers the close frame must not hold the shutdown.
    const ws = this.#ws;
    const t = setTimeout(() => ws?.terminate(), 2_000);
    await this.#loop;
    clearTimeout(t);
  }

  /** False when not connected: the message is dropped and the caller relies on the next hello. */
  send(msg: OutgoingMessage): boolean {
    const ws = this.#ws;
    if (!this.#connected || !ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  async #run(): Promise<void> {
    const log = this.#opts.log;
    while (!this.#abort.signal.aborted) {
      const upMs = await this.#connectOnce();
      if (this.#abort.signal.aborted) break;
      // Only a connection that held proves the server healthy; a flapping one keeps backing off.
      if (upMs >= this.#timing.stableAfterMs) this.#backoff.reset();
      // The server's schedule beats our own guess: it reserved that second for us.
      const delay = this.#retryAfterMs ?? this.#backoff.next();
      this.#retryAfterMs = null;
      log.info({ retryInMs: delay, attempt: this.#backoff.attempts }, 'reconnecting to the server');
      try {
        await sleep(delay, this.#abort.signal);
      } catch {
        break;
      }
      this.#opts.metrics?.reconnects.inc();
    }
  }

  /** One connection's whole life; resolves with how long it was open (0 if it never opened). */
  #connectOnce(): Promise<number> {
    const log = this.#opts.log;
    return new Promise((resolve) => {
      let tls: ConnectionTls;
      try {
        tls = this.#opts.tls();
      } catch (e) {
        log.error({ err: (e as Error).message }, 'cannot connect: no usable host certificate');
        resolve(0);
        return;
      }
      const ws = new WebSocket(agentSocketUrl(this.#opts.server), {
        cert: tls.cert,
        key: tls.key,
        ca: [...tls.ca],
        maxPayload: MAX_FRAME_BYTES,
        handshakeTimeout: this.#timing.handshakeTimeoutMs,
        perMessageDeflate: false,
      });
      this.#ws = ws;
      let openedAt: number | null = null;
      let lastSeen = Date.now();
      let keepalive: NodeJS.Timeout | null = null;
      let explained = false;
      const seen = (): void => {
        lastSeen = Date.now();
      };

      ws.on('open', () => {
        openedAt = Date.now();
        seen();
        ws.send(JSON.stringify(this.#opts.hello()));
        this.#connected = true;
        this.#opts.metrics?.connected.set(1);
        log.info({ server: this.#opts.server }, 'connected to the server');
        // Coarse on purpose: one timer both pings and notices a silent peer, at most one interval late.
        keepalive = setInterval(() => {
          if (Date.now() - lastSeen > this.#timing.deadAfterMs) {
            log.warn({ silentMs: Date.now() - lastSeen }, 'no frame or pong from the server; dropping the connection');
            ws.terminate();
            return;
          }
          ws.ping();
        }, this.#timing.pingIntervalMs);
        this.emit('connected');
      });
      ws.on('message', (data: Buffer) => {
        seen();
        this.emit('frame', data);
      });
      ws.on('pong', seen);
      ws.on('ping', seen);
      ws.on('unexpected-response', (_req, res: IncomingMessage) => {
        explained = true;
        const retryAfter = res.statusCode === 503 ? Number(res.headers['retry-after']) : NaN;
        // Somewhere inside the reserved second, so the agents given the same one do not arrive together.
        if (Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 300) this.#retryAfterMs = retryAfter * 1000 + Math.floor(Math.random() * 900);
        void readSmallBody(res).then((body) => {
          const why = errorMessageOf(body) ?? `HTTP ${res.statusCode}`;
          if (res.statusCode === 401 || res.statusCode === 403) {
            log.error(
              { status: res.statusCode, reason: why },
              'the server refused this host\'s certificate: the host may have been removed or its certificate revoked. Fix it on the server; retrying with backoff',
            );
          } else {
            log.warn({ status: res.statusCode, reason: why }, 'the server did not accept the agent connection');
          }
          ws.terminate();
        });
      });
      ws.on('error', (err: NodeJS.ErrnoException) => {
        if (explained || this.#abort.signal.aborted) return;
        const d = describeError(err);
        if (d.refusedCert) log.error({ code: err.code }, d.message);
        else log.warn({ code: err.code, err: err.message }, d.message);
      });
      ws.on('close', (code: number, reason: Buffer) => {
        if (keepalive) clearInterval(keepalive);
        if (this.#ws === ws) this.#ws = null;
        if (this.#connected) {
          this.#connected = false;
          this.#opts.metrics?.connected.set(0);
          log.warn({ code, reason: reason.toString('utf8').slice(0, 200) }, 'control connection closed');
          this.emit('disconnected');
        }
        resolve(openedAt === null ? 0 : Date.now() - openedAt);
      });
    });
  }
}

// TLS alerts a server sends when it will not take the client certificate.
const REFUSED_CERT = new Set([
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
]);
// Our side refusing the server's certificate.
const BAD_SERVER_CERT = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function describeError(err: NodeJS.ErrnoException): { message: string; refusedCert: boolean } {
  const code = err.code ?? '';
  if (REFUSED_CERT.has(code)) {
    return {
      refusedCert: true,
      message: 'the server refused this host\'s certificate during the TLS handshake: it may be revoked, expired or unknown to the server. Fix it on the server; retrying with backoff',
    };
  }
  if (BAD_SERVER_CERT.has(code)) return { refusedCert: false, message: 'the server\'s certificate does not verify against the mesh root; retrying' };
  return { refusedCert: false, message: 'cannot reach the server; retrying' };
}

function readSmallBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      if (body.length < 4096) body += chunk;
    });
    res.on('end', () => resolve(body));
    res.on('error', () => resolve(body));
    res.on('aborted', () => resolve(body));
    res.on('close', () => resolve(body));
  });
}

function errorMessageOf(body: string): string | null {
  try {
    const e = (JSON.parse(body) as { error?: { code?: string; message?: string } }).error;
    if (e?.message) return e.code ? `${e.code}: ${e.message}` : e.message;
  } catch {
    /* not JSON */
  }
  return body.trim().slice(0, 200) || null;
}
