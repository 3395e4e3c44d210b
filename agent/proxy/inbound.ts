// The inbound listener: TLS with the service certificate chosen by SNI, a client certificate
// required and checked (chain to the mesh root by OpenSSL; SPIFFE ID, trust domain and usage
// here), then the access policy, then the local instance. tcp services are piped; http services
// go through inbound-http.ts, which checks the policy per request. A caller that negotiated the
// multiplexer (ALPN, mux/) sends its connections as streams of one session: tcp streams are
// checked against the policy one by one and piped, http streams go to inbound-http.ts as sockets.
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../../shared/log.js';
import type { AccessLog } from '../observability/access-log.js';
import type { AccessEvaluator } from '../policy/access.js';
import type { InboundHttp } from './inbound-http.js';
import type { ProxyMetrics } from './metrics.js';
import { pipeBoth, tcpLine } from './outbound-tcp.js';
import { peerIdentity, sourceName } from './peer-identity.js';
import { MUX_ALPN } from './mux/frames.js';
import { CHURN_BURST, CHURN_PER_SECOND, MuxSession, type MuxStream } from './mux/session.js';
import { MIN_VERSION, SECURE_OPTIONS, type TlsMaterial } from './tls-material.js';

/** An idle multiplexed session is closed after this; the calling side closes first (25 s). */
const MUX_SERVER_IDLE_MS = 30_000;

export interface LocalService {
  name: string;
  protocol: 'http' | 'tcp';
  host: string;
  port: number;
  access: AccessEvaluator;
  /** Log each request (http) or connection (tcp): the Service's `accessLog`, else the Mesh's. */
  accessLog: boolean;
}

export interface InboundState {
  trustDomain: string;
  services: ReadonlyMap<string, LocalService>;
}

export interface PeerInfo {
  spiffeId: string;
  source: string;
  /**
   * The service as configured NOW: read per request, so a policy pushed while a connection is
   * open applies to its next request (connections between agents are long-lived and pooled).
   */
  readonly service: LocalService;
}

export class InboundListener {
  private server: tls.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  /** Connections past the handshake: what a drain waits for. */
  private readonly secured = new Set<tls.TLSSocket>();
  private readonly muxSessions = new Set<MuxSession>();
  /** When each peer (SPIFFE ID) was last warned about for stream churn, and how often it did it since. */
  private readonly churnWarned = new Map<string, { at: number; since: number }>();
  private accepting = true;

  constructor(
    private readonly listen: { host: string; port: number },
    private readonly material: TlsMaterial,
    private readonly state: () => InboundState | null,
    private readonly http: InboundHttp,
    private readonly metrics: ProxyMetrics,
    private readonly log: Logger,
    private readonly accessLog: AccessLog | null = null,
    /** False: the multiplexer is not offered (callers then connect one-to-one). */
    private readonly multiplex = true,
  ) {}

  async start(): Promise<void> {
    const server = tls.createServer({
      SNICallback: (servername, cb) => {
        const st = this.state();
        const suffix = st ? `.${st.trustDomain}` : null;
        const service = suffix && servername.endsWith(suffix) ? servername.slice(0, -suffix.length) : null;
        const ctx = service && st!.services.has(service) ? this.material.serverContext(service) : null;
        if (!ctx) cb(new Error(`no local service for server name "${servername}"`), undefined);
        else cb(null, ctx);
      },
      requestCert: true,
      rejectUnauthorized: true,
      ca: this.material.roots(),
      minVersion: MIN_VERSION,
      secureOptions: SECURE_OPTIONS,
      // Offered only by callers that can multiplex; http/1.1 so that an http client naming it is not refused.
      ...(this.multiplex ? { ALPNProtocols: [MUX_ALPN, 'http/1.1'] } : {}),
      allowHalfOpen: true,
      // Replies leave as they are written: with Nagle, a frame written while an earlier one is
      // unacknowledged (several streams on one session, a pipelined response) waited for the
      // peer's delayed ACK, up to 40 ms.
      noDelay: true,
      // A client that never finishes its handshake must not hold a socket forever.
      handshakeTimeout: 10_000,
    });
    server.on('secureConnection', (socket) => this.onSecure(socket));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
      const reason = handshakeReason(err);
      this.metrics.handshakeFailed('inbound', reason);
      this.log.info({ remote: socket.remoteAddress, reason, err: err.message }, 'inbound TLS handshake refused');
      socket.destroy();
    });
    server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(`cannot listen on ${this.listen.host}:${this.listen.port} for inbound traffic: ${e.code === 'EADDRINUSE' ? 'the port is already in use' : e.code ?? e.message}`)),
      );
      server.listen({ host: this.listen.host, port: this.listen.port }, () => {
        server.removeAllListeners('error');
        server.on('error', (e) => this.log.error({ err: e.message }, 'inbound listener error'));
        resolve();
      });
    });
    this.server = server;
    this.log.info({ listen: `${this.listen.host}:${this.listen.port}` }, 'inbound listener up');
  }

  /** The mesh roots changed: new handshakes verify clients against the new bundle. */
  refreshTrust(): void {
    this.server?.setSecureContext({ ca: this.material.roots(), minVersion: MIN_VERSION, secureOptions: SECURE_OPTIONS });
    // Callers verified against the old roots open their next connections anew, against the new ones.
    for (const m of this.muxSessions) m.goAway();
  }

  /**
   * Stop taking connections; those past their handshake carry on. Handshakes still under way are
   * not waited for (close() cuts them; their callers try another instance): a client that connected
   * and left without a word would otherwise hold the drain for the whole handshake timeout.
   */
  stopAccepting(): void {
    this.accepting = false;
    this.server?.close();
    // Callers open their next streams elsewhere; streams under way carry on.
    for (const m of this.muxSessions) m.goAway();
  }

  /** Close multiplexed sessions that carry no stream (a drain). */
  closeIdle(): void {
    for (const m of this.muxSessions) if (m.streamCount === 0) m.close();
  }

  /** Connections still open past their handshake (tcp pipes and http sessions alike). */
  openConnections(): number {
    return this.secured.size;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      for (const sock of this.sockets) sock.destroy();
    });
  }

  private onSecure(socket: tls.TLSSocket): void {
    socket.on('error', () => undefined);
    this.secured.add(socket);
    socket.once('close', () => this.secured.delete(socket));
    const st = this.state();
    const servername = typeof socket.servername === 'string' ? socket.servername : '';
    const service = st ? st.services.get(servername.slice(0, -(st.trustDomain.length + 1))) : undefined;
    if (!st || !service) {
      this.metrics.handshakeFailed('inbound', 'UNKNOWN_SERVICE');
      socket.destroy();
      return;
    }
    const id = peerIdentity(socket.getPeerX509Certificate(), st.trustDomain, 'client');
    if (typeof id === 'string') {
      this.metrics.handshakeFailed('inbound', id);
      this.log.info({ remote: socket.remoteAddress, reason: id, service: service.name }, 'inbound client certificate refused');
      socket.destroy();
      return;
    }
    const state = this.state;
    let last = service;
    const peer: PeerInfo = {
      spiffeId: `spiffe://${id.trustDomain}/${id.kind}/${id.name}`,
      source: sourceName(id),
      get service(): LocalService {
        // If the service left the config, keep answering with its last settings until the connection ends.
        const now = state()?.services.get(last.name);
        if (now) last = now;
        return last;
      },
    };
    if (socket.alpnProtocol === MUX_ALPN) {
      this.acceptMux(socket, peer);
      return;
    }
    if (service.protocol === 'http') {
      this.http.accept(socket, peer);
      return;
    }
    const started = performance.now();
    const accessLog = service.accessLog ? this.accessLog : null;
    const denied = this.tcpDenial(service, peer, started, accessLog);
    if (denied !== null) {
      socket.destroy();
      return;
    }
    const local = net.connect({ host: service.host, port: service.port, allowHalfOpen: true, noDelay: true });
    socket.pause();
    const to = `${service.host}:${service.port}`;
    local.once('connect', () => {
      this.metrics.connGroup('inbound', service.name, 'tcp')?.track(socket);
      pipeBoth(socket, local, () => accessLog?.write(tcpLine('inbound', peer.source, service.name, to, started, socket.bytesRead, socket.bytesWritten, null)));
    });
    local.once('error', (e) => {
      if (local.connecting) {
        this.log.warn({ service: service.name, err: e.message }, 'local instance refused a tcp connection');
        accessLog?.write(tcpLine('inbound', peer.source, service.name, to, started, 0, 0, 'LOCAL_UNAVAILABLE'));
        socket.destroy();
      }
    });
  }

  /** The access policy for a new tcp connection or stream: null if allowed, else the reason (counted, logged). */
  private tcpDenial(service: LocalService, peer: PeerInfo, started: number, accessLog: AccessLog | null): string | null {
    const decision = service.access.decide(peer.source, null, null);
    if (!decision.allowed || decision.wouldDeny) this.metrics.denied(service.name, decision.reason, decision.audit ? 'audit' : 'enforce');
    if (decision.allowed) return null;
    this.log.info({ source: peer.spiffeId, service: service.name, reason: decision.reason }, 'tcp connection denied by access policy');
    accessLog?.write(tcpLine('inbound', peer.source, service.name, '', started, 0, 0, decision.reason));
    return decision.reason;
  }

  private acceptMux(socket: tls.TLSSocket, peer: PeerInfo): void {
    const session: MuxSession = new MuxSession(
      socket,
      'server',
      {
        onOpen: (id) => this.openStream(session, id, peer),
        onClose: () => this.muxSessions.delete(session),
        onChurn: () => this.churned(peer),
      },
      MUX_SERVER_IDLE_MS,
    );
    this.muxSessions.add(session);
    if (!this.accepting) session.goAway();
  }

  /** Counted always; a peer that keeps coming back to do it again is logged once a minute. */
  private churned(peer: PeerInfo): void {
    this.metrics.muxChurn(peer.service.name, peer.source);
    const now = Date.now();
    const last = this.churnWarned.get(peer.spiffeId);
    if (last !== undefined && now - last.at < 60_000) {
      last.since++;
      return;
    }
    this.churnWarned.set(peer.spiffeId, { at: now, since: 0 });
    this.log.warn(
      { peer: peer.spiffeId, service: peer.service.name, burst: CHURN_BURST, perSecond: CHURN_PER_SECOND, sessionsSinceLastWarning: last?.since ?? 0 },
      'the calling agent reset too many streams before they were answered; its session takes no new ones',
    );
  }

  /**
   * One connection of a multiplexed session. http: a connection of the HTTP proxy, which checks the
   * policy per request. tcp: the policy as it stands now, then the local instance.
   */
  private openStream(session: MuxSession, id: number, peer: PeerInfo): void {
    const service = peer.service;
    // A service that left this host's config takes no new connection (as the SNI check refuses a new handshake).
    if (this.state()?.services.get(service.name) === undefined) {
      session.refuse(id, 'UNKNOWN_SERVICE');
      return;
    }
    if (service.protocol === 'http') {
      this.http.accept(session.acceptChannel(id) as unknown as tls.TLSSocket, peer);
      return;
    }
    const started = performance.now();
    const accessLog = service.accessLog ? this.accessLog : null;
    const denied = this.tcpDenial(service, peer, started, accessLog);
    if (denied !== null) {
      session.refuse(id, denied);
      return;
    }
    const local = net.connect({ host: service.host, port: service.port, allowHalfOpen: true, noDelay: true });
    const stream = session.accept(id, local);
    const to = `${service.host}:${service.port}`;
    let failed: string | null = null;
    local.once('error', (e) => {
      if (!local.connecting) return;
      failed = 'LOCAL_UNAVAILABLE';
      stream.resetReason = failed;
      this.log.warn({ service: service.name, err: e.message }, 'local instance refused a tcp connection');
    });
    local.once('connect', () => this.metrics.connGroup('inbound', service.name, 'tcp')?.track(streamCounters(stream)));
    if (accessLog) local.once('close', () => accessLog.write(tcpLine('inbound', peer.source, service.name, to, started, stream.bytesIn, stream.bytesOut, failed)));
  }
}

/**
 * A stream seen as the connection metrics see a socket: `bytesRead` is what the caller sent, as for
 * a one-to-one inbound connection, not what the local socket read.
 */
function streamCounters(stream: MuxStream): net.Socket {
  return {
    get bytesRead() {
      return stream.bytesIn;
    },
    get bytesWritten() {
      return stream.bytesOut;
    },
    once: (event: string, fn: () => void) => stream.socket.once(event, fn),
  } as unknown as net.Socket;
}

function handshakeReason(err: NodeJS.ErrnoException): string {
  const m = `${err.code ?? ''} ${err.message}`;
  if (/no local service/.test(m)) return 'UNKNOWN_SERVER_NAME';
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|peer did not return a certificate/i.test(m)) return 'NO_CLIENT_CERT';
  if (/CERTIFICATE_EXPIRED|certificate expired/i.test(m)) return 'CERT_EXPIRED';
  if (/UNKNOWN_CA|unable to get local issuer|self.signed|CERTIFICATE_VERIFY_FAILED|certificate verify failed/i.test(m)) return 'UNTRUSTED_CERT';
  if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|http request|wrong version|unsupported protocol|UNSUPPORTED_PROTOCOL/i.test(m)) return 'NOT_TLS';
  if (/ECONNRESET|socket hang up/i.test(m)) return 'RESET';
  if (/timed? ?out/i.test(m)) return 'TIMEOUT';
  return 'HANDSHAKE_FAILED';
}
