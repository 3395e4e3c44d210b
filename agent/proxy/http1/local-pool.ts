// Kept-alive plain TCP connections from the inbound side to local instances (same host, so no
// TLS). Idle connections are kept per host and port, most recently used first (LIFO keeps few
// connections warm and lets the rest time out).
import net from 'node:net';
import { type ConnHome, UpstreamConn } from './upstream-conn.js';

/**
 * How long an idle connection is kept. Below node's default server keepAliveTimeout (5 s), so by
 * default we close first and never write into a connection the server is closing; a server that
 * announces `Keep-Alive: timeout=N` gets N − 1 s (UpstreamConn.hintIdle).
 */
export const LOCAL_IDLE_MS = 4000;
const MAX_IDLE_PER_TARGET = 256;

export class LocalPool implements ConnHome {
  // host → port → idle connections. Nested maps rather than a "host:port" key: no string is built
  // per request.
  private readonly idle = new Map<string, Map<number, UpstreamConn[]>>();

  /** An idle connection to host:port, or null. */
  take(host: string, port: number): UpstreamConn | null {
    const list = this.idle.get(host)?.get(port);
    if (list === undefined) return null;
    for (;;) {
      const c = list.pop();
      if (c === undefined) return null;
      if (!c.dead) return c;
    }
  }

  /**
   * A new connection, returned at once while still connecting: node queues what is written before
   * the connect completes, so the request goes out with no extra turn of the event loop. A refusal
   * arrives as ECONNREFUSED through the owner's upClosed.
   */
  connect(host: string, port: number): UpstreamConn {
    const socket = net.connect({ host, port, noDelay: true });
    return new UpstreamConn(socket, this, host, port, 0, '', '', LOCAL_IDLE_MS, false);
  }

  release(conn: UpstreamConn): void {
    if (conn.dead) return;
    let byPort = this.idle.get(conn.address);
    if (byPort === undefined) this.idle.set(conn.address, (byPort = new Map()));
    let list = byPort.get(conn.port);
    if (list === undefined) byPort.set(conn.port, (list = []));
    if (list.length >= MAX_IDLE_PER_TARGET) {
      conn.destroy();
      return;
    }
    list.push(conn);
  }

  forget(conn: UpstreamConn): void {
    // Rare (an idle connection closed by the server or timed out): a linear scan is fine.
    const list = this.idle.get(conn.address)?.get(conn.port);
    if (list === undefined) return;
    const i = list.indexOf(conn);
    if (i !== -1) list.splice(i, 1);
  }

  close(): void {
    for (const byPort of this.idle.values()) for (const list of byPort.values()) for (const c of list) c.destroy();
    this.idle.clear();
  }
}
