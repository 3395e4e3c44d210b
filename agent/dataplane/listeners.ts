// The data plane seam. A snapshot is applied in two phases so a bad one is never half-applied:
// prepare() does everything that can fail (binding ports, building contexts) without disturbing
// what is in force; commit() then switches over and cannot fail; abort() undoes a prepare.
import net from 'node:net';
import type { Upstream } from '../../shared/host-config.js';
import type { Logger } from '../../shared/log.js';
import type { Slice } from '../../shared/protocol.js';

export interface PreparedChange {
  commit(): void;
  abort(): Promise<void>;
}

export interface DataPlane {
  prepare(next: Slice, prev: Slice | null): Promise<PreparedChange>;
  close(): Promise<void>;
}

/** Gets every connection accepted on an upstream's local port. */
export type ConnectionHandler = (service: string, socket: net.Socket) => void;

// Until the outbound proxy exists (it replaces this handler), an accepted connection is refused
// by closing it, so an app sees a clean reset rather than a hang.
const refuse: ConnectionHandler = (_service, socket) => socket.destroy();

interface Bound {
  key: string;
  service: string;
  server: net.Server;
  sockets: Set<net.Socket>;
}

/**
 * One TCP listener per host-config upstream whose service the server declared (is in
 * `slice.upstreams`). Listeners that stay wanted are kept across snapshots, so open connections
 * survive a config change; those whose service disappeared close at commit.
 */
export class ListenerDataPlane implements DataPlane {
  readonly #upstreams: readonly Required<Upstream>[];
  readonly #log: Logger;
  readonly #active = new Map<string, Bound>();
  #handler: ConnectionHandler;

  constructor(upstreams: readonly Required<Upstream>[], log: Logger, onConnection: ConnectionHandler = refuse) {
    this.#upstreams = upstreams;
    this.#log = log;
    this.#handler = onConnection;
  }

  setConnectionHandler(handler: ConnectionHandler): void {
    this.#handler = handler;
  }

  /** `bind:port` of every listener in force, by service (for /config_dump and tests). */
  listening(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const b of this.#active.values()) out[b.service] = b.key;
    return out;
  }

  async prepare(next: Slice, _prev: Slice | null): Promise<PreparedChange> {
    const wanted = new Map<string, Required<Upstream>>();
    for (const u of this.#upstreams) {
      if (Object.hasOwn(next.upstreams, u.service)) wanted.set(keyOf(u), u);
      else this.#log.debug({ service: u.service }, 'upstream is not declared on the server; not listening for it');
    }
    const added: Bound[] = [];
    try {
      for (const [key, u] of wanted) {
        // The host config is frozen, so a bound port always belongs to the same upstream.
        if (this.#active.has(key)) continue;
        added.push(await this.#listen(key, u));
      }
    } catch (e) {
      await Promise.all(added.map(closeBound));
      throw e;
    }
    let done = false;
    return {
      commit: () => {
        if (done) return;
        done = true;
        for (const b of added) this.#active.set(b.key, b);
        for (const [key, b] of this.#active) {
          if (wanted.has(key)) continue;
          this.#active.delete(key);
          this.#log.info({ service: b.service, listen: key }, 'upstream removed; closing its listener');
          void closeBound(b);
        }
        for (const b of added) this.#log.info({ service: b.service, listen: b.key }, 'listening for upstream');
      },
      abort: async () => {
        if (done) return;
        done = true;
        await Promise.all(added.map(closeBound));
      },
    };
  }

  /** Stop taking connections on every upstream port; those already open carry on. */
  stopAccepting(): void {
    for (const b of this.#active.values()) b.server.close();
  }

  /** Connections from local apps still open. */
  openConnections(): number {
    let n = 0;
    for (const b of this.#active.values()) n += b.sockets.size;
    return n;
  }

  async close(): Promise<void> {
    const all = [...this.#active.values()];
    this.#active.clear();
    await Promise.all(all.map(closeBound));
  }

  #listen(key: string, u: Required<Upstream>): Promise<Bound> {
    const sockets = new Set<net.Socket>();
    // Half-open: an app that shuts down its sending side still gets the reply (tcp upstreams).
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      // The handler is read per connection so setConnectionHandler applies to listeners already bound.
      this.#handler(u.service, socket);
    });
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        const why = e.code === 'EADDRINUSE' ? 'the port is already in use' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EADDRNOTAVAIL' ? 'no such local address' : e.message;
        reject(new Error(`cannot listen on ${key} for upstream "${u.service}": ${why}`));
      });
      server.listen({ host: u.bind, port: u.localPort, exclusive: true }, () => {
        server.removeAllListeners('error');
        server.on('error', () => undefined);
        resolve({ key, service: u.service, server, sockets });
      });
    });
  }
}

function keyOf(u: Required<Upstream>): string {
  return u.bind.includes(':') ? `[${u.bind}]:${u.localPort}` : `${u.bind}:${u.localPort}`;
}

function closeBound(b: Bound): Promise<void> {
  return new Promise((resolve) => {
    b.server.close(() => resolve());
    for (const s of b.sockets) s.destroy();
  });
}
