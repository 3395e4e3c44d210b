// The push hub: agents' WebSockets on the server's HTTPS port. It authenticates each socket by its
// host certificate, keeps one Session per host, and reconciles: after every registry change it
// rebuilds the World once and sends each agent its slice only if that slice's hash changed.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { parseDuration } from '../../shared/duration.js';
import { HmError } from '../../shared/errors.js';
import { formatSpiffeId, parseSpiffeId } from '../../shared/identity.js';
import type { Logger } from '../../shared/log.js';
import { AGENT_WS_PATH, DELTA_PROTOCOL, MAX_FRAME_BYTES, type CsrMsg, type HelloMsg, type StatsMsg } from '../../shared/protocol.js';
import type { CertificateAuthority } from '../ca/index.js';
import type { Registry } from '../registry/registry.js';
import { normalizeSerial } from '../registry/hosts.repo.js';
import { Session } from './session.js';
import { AdmissionSchedule } from './admission.js';
import type { ServerMetrics } from '../metrics.js';
import type { StatsWindow } from '../stats/window.js';
import { buildWorld, deltaWire, fullWire, MESH_DEFAULTS, sliceFor, type World } from './slices.js';

/** Seconds over which a fleet of `hosts` is let back in after a restart (see PushHub.admissionRate). */
export function admissionSpanSeconds(hosts: number): number {
  const t = Math.min(1, Math.max(0, (hosts - 1000) / 4000));
  return 25 - 10 * t;
}

/** How long an unanswered push holds back the next one to the same agent (a stuck agent is not waited for forever). */
const ANSWER_WAIT_MS = 10_000;
/** Upper bound of the pause between recomputes when they are expensive (a storm of hellos). */
const MAX_RECOMPUTE_PAUSE_MS = 500;

export interface HubOptions {
  registry: Registry;
  ca: CertificateAuthority;
  log: Logger;
  /** How often agents are pinged; a socket silent for two intervals is dropped. */
  pingIntervalMs?: number;
  /** Coalesce bursts of registry changes (e.g. a reconnect storm's hellos) into one recompute. */
  debounceMs?: number;
  metrics?: ServerMetrics;
  /** Where agents' golden-metric summaries go (none: they are dropped). */
  stats?: StatsWindow;
}

export interface HostSyncState {
  connected: boolean;
  appliedRevision: number | null;
  appliedHash: string | null;
  desiredHash: string | null;
  lastNack: { revision: number; error: string; at: string } | null;
  lastSeenAt: string | null;
}

interface PendingHello {
  session: Session;
  name: string;
  agentVersion: string;
  facts: Record<string, unknown>;
  inbound: { address: string; port: number };
  instances: Array<{ name: string; port: number; labels: Record<string, string>; healthy: boolean }>;
  upstreams: string[];
  appliedRevision: number | null;
}

export class PushHub {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<string, Session>();
  private readonly graceTimers = new Map<string, NodeJS.Timeout>();
  private world: World | null = null;
  private recomputeTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private readonly log: Logger;
  private readonly onChange = () => this.scheduleRecompute();
  private stopped = false;
  /**
   * A returning fleet is scheduled over admissionSpanSeconds(hosts) seconds (and at least 20 agents per
   * second): 25 s up to 1000 hosts, narrowing to 15 s at 5000 and beyond. Measured with
   * bench:control on 2 CPUs: at 1000 a 15 s schedule made seconds of 12 % (a stall, then two
   * seconds' worth at once), while at 5000 a 25 s schedule, stretched by the time each handshake
   * takes, ended after 37 s; 15 s brought them all back in 24 s with no second over 7 %.
   */
  private readonly admission = new AdmissionSchedule(() => this.admissionRate());
  private admissionRate(): number {
    return Math.max(20, Math.ceil(this.hostCount / admissionSpanSeconds(this.hostCount)));
  }
  private hostCount = 0;

  constructor(private readonly opts: HubOptions) {
    this.log = opts.log.child({ component: 'push' });
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    this.opts.registry.events.on('change', this.onChange);
    const ping = this.opts.pingIntervalMs ?? 15_000;
    this.pingTimer = setInterval(() => this.pingAll(), ping).unref();
    this.flushTimer = setInterval(() => this.flush(), 1000).unref();
    // Nobody is connected at start: every host gets the grace period to come back.
    this.opts.registry.hosts.markAllDisconnected();
    // The admission schedule itself holds agents back after a restart (a fleet of N returns over
    // about N / rate seconds): that time is added to their grace, or the last of them would be
    // marked unhealthy, and every caller pushed the change, just before they are let in.
    const hosts = this.opts.registry.hosts.list();
    this.hostCount = hosts.length;
    const returnMs = Math.ceil(hosts.length / this.admissionRate()) * 1000;
    for (const h of hosts) this.startGrace(h.name, returnMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.opts.registry.events.off('change', this.onChange);
    for (const t of [this.pingTimer, this.flushTimer, this.recomputeTimer]) if (t) clearInterval(t);
    for (const t of this.graceTimers.values()) clearTimeout(t);
    this.graceTimers.clear();
    if (this.helloTimer) clearImmediate(this.helloTimer);
    if (this.graceFlush) clearImmediate(this.graceFlush);
    for (const s of this.sessions.values()) s.close(1001, 'server shutting down');
    this.flush();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    for (const s of this.sessions.values()) s.ws.terminate();
  }

  connectedCount(): number {
    return this.sessions.size;
  }

  /** What status shows for a host: connection and applied vs desired config. */
  syncState(host: string): HostSyncState | null {
    const s = this.sessions.get(host);
    if (!s) return null;
    return {
      connected: true,
      appliedRevision: s.appliedRevision,
      appliedHash: s.appliedHash,
      desiredHash: s.sentHash,
      lastNack: s.lastNack ?? null,
      lastSeenAt: s.lastSeenAt,
    };
  }

  /** The hash the host's slice has now, connected or not (null if it never said hello). */
  desiredHash(host: string): string | null {
    const routing = this.opts.registry.hosts.routing(host);
    if (!routing) return null;
    const world = this.currentWorld();
    return sliceFor(world, world.hostServices.get(host) ?? [], routing.upstreams).hash;
  }

  disconnect(host: string, reason: string): void {
    this.sessions.get(host)?.close(1008, reason);
  }

  // ---- connections -----------------------------------------------------------------------

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, code: string, message: string, retryAfter?: number) => {
      if (retryAfter === undefined) this.log.warn({ remote: req.socket.remoteAddress, code }, `agent connection refused: ${message}`);
      const body = JSON.stringify({ error: { code, message } });
      const reason = status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : status === 503 ? 'Service Unavailable' : 'Not Found';
      const extra = retryAfter !== undefined ? `retry-after: ${retryAfter}\r\n` : '';
      socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
    };
    if (this.stopped) return refuse(503, 'HM_ERR_UNAVAILABLE', 'server shutting down');
    if ((req.url ?? '').split('?')[0] !== AGENT_WS_PATH) return refuse(404, 'HM_ERR_ROUTE_NOT_FOUND', `no WebSocket endpoint at ${req.url}`);
    const tls = req.socket as TLSSocket;
    const peer = typeof tls.getPeerX509Certificate === 'function' ? tls.getPeerX509Certificate() : undefined;
    if (!peer) return refuse(401, 'HM_ERR_UNAUTHENTICATED', 'a host certificate is required to connect as an agent');
    if (!tls.authorized) return refuse(401, 'HM_ERR_UNAUTHENTICATED', `host certificate rejected: ${String(tls.authorizationError)}`);
    const host = this.hostOf(peer);
    if (typeof host !== 'string') return refuse(403, 'HM_ERR_IDENTITY', host.error);
    const wait = this.sessions.has(host) ? 0 : this.admission.admit(host, Date.now());
    if (wait > 0) return refuse(503, 'HM_ERR_UNAVAILABLE', `many agents are connecting; come back in ${wait} s`, wait);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(host, ws));
  }

  /** The host a verified client certificate speaks for, or why it may not connect. */
  private hostOf(cert: X509Certificate): string | { error: string } {
    const uris = (cert.subjectAltName ?? '').split(', ').filter((x) => x.startsWith('URI:')).map((x) => x.slice(4));
    if (uris.length !== 1) return { error: 'the certificate must carry exactly one SPIFFE URI' };
    const id = parseSpiffeId(uris[0]!);
    if (!id || id.kind !== 'host' || id.trustDomain !== this.opts.registry.trustDomain) {
      return { error: `${uris[0]} is not a host identity of trust domain ${this.opts.registry.trustDomain}` };
    }
    const routing = this.opts.registry.hosts.routing(id.name);
    this.hostCount = this.opts.registry.hosts.count();
    if (!routing) return { error: `host "${id.name}" is not (or no longer) part of the mesh; join again with a new token` };
    // Only the host certificates issued to this membership (the latest, and the one before it in
    // case a renewal was not saved) are accepted: a certificate from before a host was removed and
    // joined again belongs to a previous holder of the name.
    if (!routing.certSerials.includes(normalizeSerial(cert.serialNumber))) {
      return { error: `this certificate for "${id.name}" is not one issued to the host's current membership; join again` };
    }
    return id.name;
  }

  private accept(host: string, ws: WebSocket): void {
    const previous = this.sessions.get(host);
    if (previous) previous.close(1000, 'replaced by a newer connection from the same host');
    const session = new Session(
      host,
      ws,
      {
        hello: (s, m) => this.onHello(s, m),
        health: (s, changes) => this.onHealth(s, changes),
        csr: (s, m) => this.onCsr(s, m),
        stats: (s, m) => this.onStats(s, m),
        applied: (s) => {
          if (s.sentAt !== null && s.appliedHash === s.sentHash) {
            this.opts.metrics?.pushToAck.observe((performance.now() - s.sentAt) / 1000);
            s.sentAt = null;
          }
          if (s.pending) this.pushTo(s, this.currentWorld());
        },
        nacked: (s) => {
          this.opts.metrics?.nacks.inc();
          s.sentAt = null;
          if (s.sentDelta) {
            // The agent could not rebuild the slice from our patch: it gets the whole snapshot.
            s.appliedSlice = null;
            s.sentHash = null;
            s.pending = true;
          }
          if (s.pending) this.pushTo(s, this.currentWorld());
        },
        closed: (s) => this.onClosed(s),
      },
      this.log,
    );
    this.sessions.set(host, session);
    const grace = this.graceTimers.get(host);
    if (grace) clearTimeout(grace);
    this.graceTimers.delete(host);
    // An agent that does not say hello promptly is not an agent.
    setTimeout(() => {
      if (!session.greeted && this.sessions.get(host) === session) session.close(1008, 'no hello within 10s');
    }, 10_000).unref();
  }

  private onHello(s: Session, m: HelloMsg): void {
    const routing = this.opts.registry.hosts.routing(s.host)!;
    const allowed = routing.allowedServices ? new Set(routing.allowedServices) : null;
    const refused = allowed ? m.services.filter((x) => !allowed.has(x.name)).map((x) => x.name) : [];
    if (refused.length > 0) {
      s.refuse('HM_ERR_TOKEN_SCOPE', `this host's join token does not allow service(s) ${refused.join(', ')}; they are not registered`, 'hello');
    }
    const instances = m.services.filter((x) => !refused.includes(x.name));
    s.services = new Set(instances.map((x) => x.name));
    s.upstreams = [...new Set(m.upstreams)];
    this.pendingHellos.set(s.host, {
      session: s,
      name: s.host,
      agentVersion: m.agentVersion,
      facts: m.facts,
      inbound: m.inbound,
      instances: instances.map((x) => ({ name: x.name, port: x.port, labels: x.labels, healthy: x.healthy })),
      upstreams: s.upstreams,
      appliedRevision: m.appliedRevision,
    });
    // Hellos that arrive together are registered together: one transaction (one fsync) for the
    // batch, and one recompute, after the debounce, serves all of them and everyone their instances
    // concern. In a reconnect storm that is what keeps the server's time per agent small.
    this.helloTimer ??= setImmediate(() => this.registerHellos());
  }

  private readonly pendingHellos = new Map<string, PendingHello>();
  private helloTimer: NodeJS.Immediate | null = null;

  private registerHellos(): void {
    this.helloTimer = null;
    const batch = [...this.pendingHellos.values()].filter((h) => this.sessions.get(h.name) === h.session);
    this.pendingHellos.clear();
    if (batch.length === 0 || this.stopped) return;
    try {
      this.opts.registry.hosts.connectMany(batch);
    } catch (e) {
      // The registry refused the batch (e.g. the disk is full): the agents are told and retry later.
      this.log.error({ err: (e as Error).message, hosts: batch.length }, 'could not register connected agents');
      for (const h of batch) h.session.close(1011, 'server could not register the connection; retry');
      return;
    }
    for (const h of batch) {
      h.session.registered = true;
      this.log.info({ host: h.name, agentVersion: h.agentVersion, appliedRevision: h.appliedRevision }, 'agent connected');
    }
    this.opts.registry.notify();
    this.scheduleRecompute();
  }

  private onHealth(s: Session, changes: Array<{ service: string; healthy: boolean }>): void {
    const mine = changes.filter((c) => s.services.has(c.service));
    if (mine.length < changes.length) {
      s.refuse('HM_ERR_NOT_REGISTERED', `health for services this host does not register was ignored`, 'health');
    }
    if (mine.length === 0) return;
    if (this.opts.registry.hosts.setHealth(s.host, mine)) {
      this.log.info({ host: s.host, changes: mine }, 'instance health changed');
      this.opts.registry.notify();
    }
  }

  /** A host speaks only for its own edges: inbound to services it registers, outbound to its upstreams. */
  private onStats(s: Session, m: StatsMsg): void {
    const upstreams = new Set(s.upstreams);
    const mine = m.edges.filter((e) => e.failures <= e.requests && (e.direction === 'inbound' ? s.services.has(e.destination) : upstreams.has(e.destination)));
    if (mine.length < m.edges.length) {
      s.refuse('HM_ERR_NOT_REGISTERED', `${m.edges.length - mine.length} edge summaries were ignored: an edge must be inbound to a service this host registers or outbound to one of its upstreams, with failures ≤ requests`, 'stats');
    }
    this.opts.stats?.record(mine);
  }

  private async onCsr(s: Session, m: CsrMsg): Promise<void> {
    const td = this.opts.registry.trustDomain;
    if (m.kind === 'host' && m.name !== s.host) {
      throw new HmError('HM_ERR_IDENTITY', `host "${s.host}" may not obtain the identity of host "${m.name}"`);
    }
    if (m.kind === 'service' && !s.services.has(m.name)) {
      throw new HmError('HM_ERR_NOT_REGISTERED', `host "${s.host}" does not register service "${m.name}" (or its token does not allow it); no certificate issued`);
    }
    const world = this.currentWorld();
    const issued = await this.opts.ca.signCsr(m.csr, {
      identity: formatSpiffeId({ trustDomain: td, kind: m.kind, name: m.name }),
      ttlMs: parseDuration(world.meshSpec.certTTL ?? MESH_DEFAULTS.certTTL),
      ...(m.kind === 'service' ? { dnsNames: [`${m.name}.${td}`] } : {}),
    });
    if (m.kind === 'host') this.opts.registry.hosts.setCert(s.host, issued.serial, issued.notAfter.toISOString());
    this.opts.metrics?.certificatesIssued.inc({ kind: m.kind });
    s.send({ type: 'cert', id: m.id, kind: m.kind, name: m.name, certPem: issued.certPem, chainPem: issued.chainPem, notAfter: issued.notAfter.toISOString() });
    this.log.info({ host: s.host, identity: issued.spiffeId, notAfter: issued.notAfter }, 'certificate issued');
  }

  private onClosed(s: Session): void {
    if (this.sessions.get(s.host) !== s) return; // replaced by a newer connection
    this.sessions.delete(s.host);
    this.opts.registry.hosts.recordSessions([
      { name: s.host, connected: false, lastSeenAt: s.lastSeenAt, appliedRevision: s.appliedRevision, appliedHash: s.appliedHash, lastNack: s.lastNack },
    ]);
    this.log.info({ host: s.host }, 'agent disconnected');
    if (!this.stopped) this.startGrace(s.host);
  }

  /** After the grace period without a connection, the host's instances stop receiving traffic. */
  private startGrace(host: string, extraMs = 0): void {
    const prior = this.graceTimers.get(host);
    if (prior) clearTimeout(prior);
    const spec = this.currentWorld().meshSpec.disconnectGracePeriod ?? MESH_DEFAULTS.disconnectGracePeriod;
    const t = setTimeout(() => {
      this.graceTimers.delete(host);
      if (this.sessions.has(host) || this.stopped) return;
      this.graceExpired.add(host);
      // Hosts whose grace ends together (all those a restart left behind) are marked in one transaction.
      this.graceFlush ??= setImmediate(() => this.markGraceExpired(spec));
    }, parseDuration(spec) + extraMs);
    t.unref();
    this.graceTimers.set(host, t);
  }

  private readonly graceExpired = new Set<string>();
  private graceFlush: NodeJS.Immediate | null = null;

  private markGraceExpired(spec: string): void {
    this.graceFlush = null;
    const hosts = [...this.graceExpired].filter((h) => !this.sessions.has(h));
    this.graceExpired.clear();
    if (hosts.length === 0 || this.stopped) return;
    const changed = this.opts.registry.hosts.markInstancesUnhealthyMany(hosts);
    if (changed.length === 0) return;
    this.log.warn({ hosts: changed.length > 20 ? `${changed.slice(0, 20).join(', ')} and ${changed.length - 20} more` : changed.join(', '), grace: spec }, 'hosts disconnected past their grace period: their instances are now unhealthy');
    this.opts.registry.notify();
  }

  // ---- reconciliation ------------------------------------------------------------------------

  private currentWorld(): World {
    const rev = this.opts.registry.revision();
    if (!this.world || this.world.revision !== rev) this.world = buildWorld(this.opts.registry, [this.opts.ca.rootPem]);
    return this.world;
  }

  private scheduleRecompute(): void {
    if (this.recomputeTimer || this.stopped) return;
    // After a recompute that took long (thousands of agents, a storm of hellos) the next one waits
    // until twice its time has passed since it ended, so the server spends at most a third of its
    // time on them and each carries more changes; a write after a quiet spell goes out at once.
    const sinceLast = performance.now() - this.lastRecomputeEnd;
    const rest = Math.min(MAX_RECOMPUTE_PAUSE_MS, 2 * this.lastRecomputeMs) - sinceLast;
    this.recomputeTimer = setTimeout(() => {
      this.recomputeTimer = null;
      const t0 = performance.now();
      this.recomputeAll();
      this.lastRecomputeEnd = performance.now();
      this.lastRecomputeMs = this.lastRecomputeEnd - t0;
    }, Math.max(this.opts.debounceMs ?? 5, rest));
  }

  private lastRecomputeMs = 0;
  private lastRecomputeEnd = 0;

  private recomputeAll(): void {
    const world = this.currentWorld();
    for (const s of this.sessions.values()) if (s.registered) this.pushTo(s, world);
  }

  private pushTo(s: Session, world: World): void {
    const built = sliceFor(world, [...s.services], s.upstreams);
    if (built.hash === s.sentHash) {
      s.pending = false;
      return;
    }
    const now = performance.now();
    // One push in flight per agent: a slow agent gets the latest slice when it answers, not a queue
    // of every intermediate one (in a join storm those queues were what filled the server's memory).
    if (s.sentAt !== null && now - s.sentAt < ANSWER_WAIT_MS) {
      s.pending = true;
      return;
    }
    s.pending = false;
    s.sentHash = built.hash;
    s.sentRevision = world.revision;
    s.sentSlice = built.slice;
    s.sentDelta = false;
    // A reconnecting agent that already runs this exact slice need not receive it again.
    if (built.hash === s.appliedHash) {
      s.appliedSlice ??= built.slice;
      return;
    }
    s.sentAt = now;
    const delta = s.protocol >= DELTA_PROTOCOL && s.appliedSlice && s.appliedHash ? deltaWire(world, built, s.appliedHash, s.appliedSlice) : null;
    if (delta !== null) {
      s.sentDelta = true;
      this.opts.metrics?.pushes.inc({ kind: 'delta' });
      s.sendText(delta);
      return;
    }
    this.opts.metrics?.pushes.inc({ kind: 'snapshot' });
    // Thousands of agents often share one slice: serialize it once per World, not once per agent.
    s.sendText(fullWire(world, built));
  }

  private pingAll(): void {
    for (const s of this.sessions.values()) {
      if (!s.alive) {
        this.log.warn({ host: s.host }, 'agent stopped answering pings; dropping its connection');
        s.ws.terminate();
        continue;
      }
      s.alive = false;
      s.ws.ping();
    }
  }

  /** Connection state and acks, written in one transaction per second rather than one per message. */
  private flushes = 0;

  /** Every 10 s: how far behind each connected agent is (a histogram, so the label set stays bounded). */
  private sampleLag(): void {
    const m = this.opts.metrics;
    if (!m) return;
    const current = this.opts.registry.revision();
    let behind = 0;
    for (const s of this.sessions.values()) {
      if (!s.registered) continue;
      const lagging = s.sentHash !== null && s.appliedHash !== s.sentHash;
      if (lagging) behind++;
      m.revisionLag.observe(lagging ? Math.max(0, current - (s.appliedRevision ?? 0)) : 0);
    }
    m.agentsBehind.set(behind);
    if (this.opts.stats) m.statsDropped.set(this.opts.stats.dropped);
  }

  private flush(): void {
    const rows = [];
    const now = performance.now();
    for (const s of this.sessions.values()) {
      // An agent that never answered its last push is not waited for beyond ANSWER_WAIT_MS.
      if (s.pending && s.sentAt !== null && now - s.sentAt >= ANSWER_WAIT_MS) this.pushTo(s, this.currentWorld());
      if (!s.dirty) continue;
      s.dirty = false;
      rows.push({ name: s.host, connected: true, lastSeenAt: s.lastSeenAt, appliedRevision: s.appliedRevision, appliedHash: s.appliedHash, lastNack: s.lastNack });
    }
    if (rows.length > 0) this.opts.registry.hosts.recordSessions(rows);
    if (++this.flushes % 10 === 0) this.sampleLag();
  }
}
