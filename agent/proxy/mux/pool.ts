// The calling agent's multiplexed sessions, per upstream service and endpoint host. A tcp
// connection takes a stream on a live session to the chosen endpoint, or waits for the one dial
// already under way to it, or starts that dial. A peer that does not speak the multiplexer (an
// agent from before it) answers the TLS handshake without selecting its ALPN: that connection is
// then used one-to-one as before, and later connections to that endpoint dial one-to-one directly.
//
// Certificates: a session made with older TlsMaterial takes no new stream (streams on it finish),
// as for the http pool.
import type tls from 'node:tls';
import type { Endpoint } from '../../../shared/protocol.js';
import type { Dialer } from '../dialer.js';
import type { TlsMaterial } from '../tls-material.js';
import { MUX_ALPN } from './frames.js';
import { MuxSession } from './session.js';

/** Below the inbound side's idle timeout, so this side closes an idle session first. */
export const MUX_CLIENT_IDLE_MS = 25_000;
/** How long to remember that an endpoint answered without the multiplexer. */
const NO_MUX_MEMORY_MS = 60_000;

export type TcpCarrier = { session: MuxSession } | { socket: tls.TLSSocket };

export class MuxPool {
  private readonly sessions = new Map<string, MuxSession[]>();
  private readonly dialing = new Map<string, Promise<MuxSession | tls.TLSSocket>>();
  private readonly noMux = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly dialer: Dialer,
    private readonly material: TlsMaterial,
    /** False (host config `multiplex: false`): every caller gets an mTLS connection of its own. */
    private readonly multiplex = true,
  ) {}

  /**
   * A session (or, to a peer without the multiplexer, a connection of its own) to `ep`. A session
   * comes with a place reserved for the caller's stream: open it, or release() it.
   */
  async carrier(service: string, ep: Endpoint, timeoutMs: number): Promise<TcpCarrier> {
    if (!this.multiplex) return { socket: await this.dialer.dial(service, ep, timeoutMs) };
    const key = `${service}\n${ep.host}\n${ep.address}:${ep.port}`;
    const live = this.live(key);
    if (live !== null) {
      live.reserve();
      return { session: live };
    }
    const until = this.noMux.get(key);
    if (until !== undefined) {
      if (Date.now() < until) return { socket: await this.dialer.dial(service, ep, timeoutMs) };
      this.noMux.delete(key);
    }
    let pending = this.dialing.get(key);
    if (pending === undefined) {
      pending = this.dialSession(key, service, ep, timeoutMs);
      this.dialing.set(key, pending);
      const clear = (): void => void this.dialing.delete(key);
      pending.then(clear, clear);
    }
    const got = await pending;
    if (got instanceof MuxSession) {
      if (!got.open) return this.carrier(service, ep, timeoutMs);
      got.reserve();
      return { session: got };
    }
    // An old peer: the first caller takes the connection, the others dial their own.
    if (!claimed.has(got)) {
      claimed.add(got);
      return { socket: got };
    }
    return { socket: await this.dialer.dial(service, ep, timeoutMs) };
  }

  /** Close sessions that carry nothing (a drain); true when none is left. */
  closeIdle(): boolean {
    for (const list of this.sessions.values()) for (const s of [...list]) if (s.streamCount === 0) s.close();
    return this.sessions.size === 0;
  }

  close(): void {
    this.closed = true;
    for (const list of this.sessions.values()) for (const s of [...list]) s.destroy();
    this.sessions.clear();
  }

  private live(key: string): MuxSession | null {
    const list = this.sessions.get(key);
    if (list === undefined) return null;
    const version = this.material.version;
    // A copy: goAway() may close a session, which takes it out of `list`.
    for (const s of [...list]) {
      if (!s.open) continue;
      if (s.version !== version) {
        // Made with older certificates: no new streams; closes when its last stream ends.
        s.goAway();
        continue;
      }
      return s;
    }
    return null;
  }

  private async dialSession(key: string, service: string, ep: Endpoint, timeoutMs: number): Promise<MuxSession | tls.TLSSocket> {
    const version = this.material.version;
    const socket = await this.dialer.dial(service, ep, timeoutMs, [MUX_ALPN]);
    if (socket.alpnProtocol !== MUX_ALPN) {
      this.noMux.set(key, Date.now() + NO_MUX_MEMORY_MS);
      return socket;
    }
    if (this.closed) {
      socket.destroy();
      throw new Error('the data plane is stopping');
    }
    let list = this.sessions.get(key);
    if (list === undefined) this.sessions.set(key, (list = []));
    const session: MuxSession = new MuxSession(
      socket,
      'client',
      {
        onClose: () => {
          const l = this.sessions.get(key);
          if (l === undefined) return;
          const i = l.indexOf(session);
          if (i >= 0) l.splice(i, 1);
          if (l.length === 0) this.sessions.delete(key);
        },
      },
      MUX_CLIENT_IDLE_MS,
      version,
    );
    list.push(session);
    return session;
  }
}

/** Raw connections from a shared dial already handed to a caller. */
const claimed = new WeakSet<tls.TLSSocket>();
