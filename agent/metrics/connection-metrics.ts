// Connections the proxy carries, tcp and http alike: opened, open now, and bytes both ways, by
// direction and service. Bytes are read from the sockets' own counters (bytesRead/bytesWritten)
// when the scrape asks, for live connections, and added to a total when a connection closes: a
// pooled keep-alive connection that lives for days is still counted as it goes, and nothing is
// added per request or per chunk.
import type net from 'node:net';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Direction } from './request-metrics.js';

export type Protocol = 'http' | 'tcp';

/** One (direction, service, protocol) group. */
export class ConnGroup {
  opened = 0;
  readonly live = new Set<net.Socket>();
  closedIn = 0;
  closedOut = 0;

  constructor(
    readonly direction: Direction,
    readonly service: string,
    readonly protocol: Protocol,
  ) {}

  /** Count `socket` from now until it closes. `in` is what it received from its peer, `out` what was sent to it. */
  track(socket: net.Socket): void {
    this.opened++;
    this.live.add(socket);
    // One listener per connection (not per request).
    socket.once('close', () => {
      this.live.delete(socket);
      this.closedIn += socket.bytesRead;
      this.closedOut += socket.bytesWritten;
    });
  }

  bytes(): { in: number; out: number } {
    let i = this.closedIn;
    let o = this.closedOut;
    for (const s of this.live) {
      i += s.bytesRead;
      o += s.bytesWritten;
    }
    return { in: i, out: o };
  }
}

const LABELS = ['direction', 'service', 'protocol'] as const;

export class ConnectionMetrics {
  private readonly groups = new Map<string, ConnGroup>();

  constructor(
    registry: Registry,
    /**
     * False (`metrics.traffic: false`): group() returns null, nothing is tracked and nothing is
     * registered. Nothing else reads these figures.
     */
    readonly enabled = true,
  ) {
    if (!enabled) return;
    const groups = this.groups;
    const registers = [registry];
    const labels = (g: ConnGroup): Record<(typeof LABELS)[number], string> => ({ direction: g.direction, service: g.service, protocol: g.protocol });
    new Counter({
      name: 'hostmesh_tcp_connections_opened_total',
      help: 'TCP connections carried by the proxy (tcp and http services), by direction, service and protocol.',
      labelNames: LABELS,
      registers,
      collect() {
        this.reset();
        for (const g of groups.values()) this.inc(labels(g), g.opened);
      },
    });
    new Gauge({
      name: 'hostmesh_tcp_connections_active',
      help: 'TCP connections carried by the proxy and open now.',
      labelNames: LABELS,
      registers,
      collect() {
        this.reset();
        for (const g of groups.values()) this.set(labels(g), g.live.size);
      },
    });
    new Counter({
      name: 'hostmesh_tcp_bytes_total',
      help: 'Bytes on proxied connections; flow="in" is what the proxy received from the connecting side (the app outbound, the calling agent inbound), "out" what it sent back.',
      labelNames: [...LABELS, 'flow'],
      registers,
      collect() {
        this.reset();
        for (const g of groups.values()) {
          const b = g.bytes();
          this.inc({ ...labels(g), flow: 'in' }, b.in);
          this.inc({ ...labels(g), flow: 'out' }, b.out);
        }
      },
    });
  }

  /** The group for these labels (made on first use), or null when traffic metrics are off. Once per connection. */
  group(direction: Direction, service: string, protocol: Protocol): ConnGroup | null {
    if (!this.enabled) return null;
    const key = `${direction}\n${service}\n${protocol}`;
    let g = this.groups.get(key);
    if (g === undefined) this.groups.set(key, (g = new ConnGroup(direction, service, protocol)));
    return g;
  }
}
