// The data plane as the config applier sees it: prepare() compiles a snapshot into routes,
// balancers, policies and listeners without touching traffic (anything invalid fails here, and the
// agent nacks); commit() swaps it all in at once. Inbound and outbound proxies read the state in
// force per connection or request, so a change never cuts established connections.
import type net from 'node:net';
import type { HostConfig } from '../../shared/host-config.js';
import type { Logger } from '../../shared/log.js';
import type { Slice } from '../../shared/protocol.js';
import type { Registry } from 'prom-client';
import type { CertManager } from '../certs/manager.js';
import type { TrustBundle } from '../certs/trust.js';
import { ListenerDataPlane, type DataPlane, type PreparedChange } from '../dataplane/listeners.js';
import { Observability } from '../observability/index.js';
import { compileAccessPolicy } from '../policy/access.js';
import { Dialer } from './dialer.js';
import { InboundHttp } from './inbound-http.js';
import { InboundListener, type InboundState, type LocalService } from './inbound.js';
import { ProxyMetrics } from './metrics.js';
import type { EdgeStats } from '../metrics/request-metrics.js';
import { OutboundHttp } from './outbound-http.js';
import { handleOutboundTcp } from './outbound-tcp.js';
import { MuxPool } from './mux/pool.js';
import { TlsMaterial } from './tls-material.js';
import { compileUpstream, UpstreamState } from './upstream.js';

export class ProxyDataPlane implements DataPlane {
  private readonly listeners: ListenerDataPlane;
  private readonly upstreams = new Map<string, UpstreamState>();
  private inboundState: InboundState | null = null;
  private caKey = '';
  private readonly metrics: ProxyMetrics;
  private readonly obs: Observability;
  private material: TlsMaterial | null = null;
  private inbound: InboundListener | null = null;
  private inboundHttp: InboundHttp | null = null;
  private outboundHttp: OutboundHttp | null = null;
  private muxPool: MuxPool | null = null;
  private trustDomain = '';

  constructor(
    private readonly config: HostConfig,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.metrics = new ProxyMetrics(registry, { traffic: config.metrics?.traffic ?? true, summaries: config.metrics?.summaries ?? true });
    this.metrics.watchUpstreams(() => this.upstreams.values());
    this.obs = new Observability(config, registry, log);
    this.listeners = new ListenerDataPlane(config.upstreams, log, (service, socket) => this.onOutbound(service, socket));
  }

  /** The identity this host calls with: its only (or first) registered service, else its host identity. */
  get callerService(): string | null {
    return this.config.services[0]?.name ?? null;
  }

  /** Once certificates exist: open the inbound listener and enable outbound connections. */
  async start(certs: CertManager, trust: TrustBundle, trustDomain: string): Promise<void> {
    this.trustDomain ||= trustDomain;
    const material = (this.material = new TlsMaterial(certs, trust, this.callerService));
    this.muxPool = new MuxPool(new Dialer(material, () => this.trustDomain), material, this.config.multiplex ?? true);
    this.inboundHttp = new InboundHttp(this.metrics, this.log.child({ side: 'inbound' }), () => this.inboundState?.services, this.obs);
    this.outboundHttp = new OutboundHttp(
      (s) => this.upstreams.get(s),
      this.muxPool,
      material,
      () => (this.callerService ? `${this.callerService}` : `host/${this.config.name}`),
      this.metrics,
      this.log.child({ side: 'outbound' }),
      this.obs,
    );
    this.inbound = new InboundListener(this.config.inbound, material, () => this.inboundState, this.inboundHttp, this.metrics, this.log.child({ side: 'inbound' }), this.obs.accessLog, this.config.multiplex ?? true);
    await this.inbound.start();
  }

  async prepare(next: Slice, prev: Slice | null): Promise<PreparedChange> {
    // Compile everything first: a bad value throws here and the agent nacks with nothing changed.
    const compiled = new Map<string, ReturnType<typeof compileUpstream>>();
    for (const [name, u] of Object.entries(next.upstreams)) compiled.set(name, compileUpstream(u, next.mesh.accessLog));
    const services = new Map<string, LocalService>();
    for (const s of this.config.services) {
      const declared = next.services[s.name];
      const protocol = declared?.spec?.protocol ?? s.protocol ?? 'tcp';
      services.set(s.name, {
        name: s.name,
        protocol,
        host: s.host,
        port: s.port,
        access: compileAccessPolicy(declared?.accessPolicy ?? null, next.mesh.defaultAccess),
        accessLog: declared?.spec?.accessLog ?? next.mesh.accessLog,
      });
    }
    const inboundState: InboundState = { trustDomain: next.mesh.trustDomain, services };
    const listenerChange = await this.listeners.prepare(next, prev);
    const caKey = next.caBundle.join('\n');
    return {
      commit: () => {
        listenerChange.commit();
        for (const [name, c] of compiled) {
          let st = this.upstreams.get(name);
          if (!st) this.upstreams.set(name, (st = new UpstreamState(name)));
          c.apply(st);
        }
        for (const name of [...this.upstreams.keys()]) if (!compiled.has(name)) this.upstreams.delete(name);
        this.trustDomain = next.mesh.trustDomain;
        this.inboundState = inboundState;
        if (caKey !== this.caKey) {
          const first = this.caKey === '';
          this.caKey = caKey;
          if (!first) {
            this.material?.invalidate();
            this.inbound?.refreshTrust();
          }
        }
      },
      abort: () => listenerChange.abort(),
    };
  }

  /** Every request edge's running totals, for the golden-metric summaries sent to the server. */
  requestEdges(): readonly EdgeStats[] {
    return this.metrics.requests.edges();
  }

  listening(): Record<string, string> {
    return this.listeners.listening();
  }

  /**
   * Graceful stop: take no new connections, close http connections as soon as they are between
   * requests (so a request in flight is answered), let tcp connections end on their own, and
   * resolve when nothing is open or at `deadline` (Date.now() ms), whichever comes first.
   * Returns how many connections were still open at the end (close() then cuts them).
   */
  async drain(deadline: number): Promise<number> {
    this.listeners.stopAccepting();
    this.inbound?.stopAccepting();
    for (;;) {
      this.inboundHttp?.closeIdle();
      this.outboundHttp?.closeIdle();
      this.inbound?.closeIdle();
      this.muxPool?.closeIdle();
      const open = this.listeners.openConnections() + (this.inbound?.openConnections() ?? 0);
      if (open === 0 || Date.now() >= deadline) return open;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async close(): Promise<void> {
    await this.listeners.close();
    await this.inbound?.close();
    this.inboundHttp?.close();
    this.outboundHttp?.close();
    this.muxPool?.close();
    await this.obs.close();
  }

  private onOutbound(service: string, socket: net.Socket): void {
    const up = this.upstreams.get(service);
    if (!up || !this.muxPool || !this.outboundHttp) {
      socket.destroy();
      return;
    }
    if (up.settings.protocol === 'http') this.outboundHttp.accept(service, socket);
    else handleOutboundTcp(up, socket, this.muxPool, this.metrics, this.log, this.obs.accessLog, this.callerService ?? `host/${this.config.name}`);
  }
}
