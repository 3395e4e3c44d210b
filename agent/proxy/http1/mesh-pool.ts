// Kept-alive connections from the outbound side to other agents' inbound listeners, idle ones
// kept per upstream service and endpoint host, most recently used first. A new connection is a
// stream of the multiplexed session to that agent (mux/, used as a socket), or an mTLS
// connection of its own to an agent without the multiplexer (SNI naming the service, SPIFFE check
// of the server, either way).
//
// Certificates: each connection remembers the TlsMaterial.version it was made with, and a
// connection made with older material is never handed out again (closed when taken or released),
// so a renewed or re-rooted identity is used from the next request on; requests already in flight
// on old connections finish undisturbed.
import type net from 'node:net';
import type { Endpoint } from '../../../shared/protocol.js';
import type { MuxPool } from '../mux/pool.js';
import type { TlsMaterial } from '../tls-material.js';
import { type ConnHome, UpstreamConn } from './upstream-conn.js';

/** Below the inbound listener's 30 s keep-alive timeout, so this side always closes first. */
export const MESH_IDLE_MS = 25_000;
const MAX_IDLE_PER_ENDPOINT = 256;

/** Who asked for a dial. `token` tells a current dial from one its asker has given up on. */
export interface DialOwner {
  /** Return false if the connection is no longer wanted: it then joins the idle pool. */
  onDialed(conn: UpstreamConn, token: number): boolean;
  onDialFailed(err: Error, token: number): void;
}

export class MeshPool implements ConnHome {
  // service → endpoint host → idle connections (nested: no key string built per request).
  private readonly idle = new Map<string, Map<string, UpstreamConn[]>>();
  private closed = false;

  constructor(
    private readonly mux: MuxPool,
    private readonly material: TlsMaterial,
  ) {}

  /** An idle connection to this endpoint made with the current certificates, or null. */
  take(service: string, ep: Endpoint): UpstreamConn | null {
    const list = this.idle.get(service)?.get(ep.host);
    if (list === undefined) return null;
    const version = this.material.version;
    for (;;) {
      const c = list.pop();
      if (c === undefined) return null;
      if (c.dead) continue;
      if (c.version !== version || c.address !== ep.address || c.port !== ep.port) {
        c.destroy();
        continue;
      }
      return c;
    }
  }

  /** Open a new connection; the result goes to owner.onDialed / onDialFailed with `token`. */
  dial(service: string, ep: Endpoint, timeoutMs: number, owner: DialOwner, token: number): void {
    const version = this.material.version;
    // One promise and two closures per new connection (not per request: connections are reused).
    this.mux.carrier(service, ep, timeoutMs).then(
      (carrier) => {
        const socket = 'session' in carrier ? (carrier.session.openChannel() as unknown as net.Socket) : carrier.socket;
        const conn = new UpstreamConn(socket, this, ep.address, ep.port, version, service, ep.host, MESH_IDLE_MS, true);
        if (this.closed) conn.destroy();
        else if (!owner.onDialed(conn, token)) this.release(conn);
      },
      (err: Error) => owner.onDialFailed(err, token),
    );
  }

  release(conn: UpstreamConn): void {
    if (conn.dead) return;
    if (this.closed || conn.version !== this.material.version) {
      conn.destroy();
      return;
    }
    let byHost = this.idle.get(conn.service);
    if (byHost === undefined) this.idle.set(conn.service, (byHost = new Map()));
    let list = byHost.get(conn.endpoint);
    if (list === undefined) byHost.set(conn.endpoint, (list = []));
    if (list.length >= MAX_IDLE_PER_ENDPOINT) {
      conn.destroy();
      return;
    }
    list.push(conn);
  }

  forget(conn: UpstreamConn): void {
    const list = this.idle.get(conn.service)?.get(conn.endpoint);
    if (list === undefined) return;
    const i = list.indexOf(conn);
    if (i !== -1) list.splice(i, 1);
  }

  close(): void {
    this.closed = true;
    for (const byHost of this.idle.values()) for (const list of byHost.values()) for (const c of list) c.destroy();
    this.idle.clear();
  }
}
