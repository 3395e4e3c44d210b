// One kept-alive connection from the proxy to where requests go: the local instance (plain TCP,
// inbound side) or another agent's inbound listener (mTLS, outbound side). It carries one request
// at a time. The response parser and body framer live here because they belong to the byte stream
// of this connection, not to any one request.
//
// Socket listeners are installed once, when the connection is made, and dispatch to `owner`, the
// session using it now (null while idle in a pool): a request borrowing a pooled connection costs
// no listener churn and no closure.
import type net from 'node:net';
import { ResponseHeadParser } from '../../http/head-parser.js';
import { BodyFramer } from './body-framer.js';

/** What a session using a connection hears from it. */
export interface ConnOwner {
  upData(conn: UpstreamConn, chunk: Buffer): void;
  upDrain(conn: UpstreamConn): void;
  /** The connection ended, failed or closed; it is unusable. Called once, and only on the owner. */
  upClosed(conn: UpstreamConn, err: NodeJS.ErrnoException | null): void;
}

/** Where an idle connection goes back to, and is removed from when it closes while idle. */
export interface ConnHome {
  forget(conn: UpstreamConn): void;
}

export class UpstreamConn {
  owner: ConnOwner | null = null;
  readonly parser = new ResponseHeadParser();
  readonly body = new BodyFramer();
  /** Exchanges completed on this connection: above 0 it is a reused one, which may have gone stale. */
  served = 0;
  /** Whether the socket is connected (TLS: verified) yet. */
  connected: boolean;
  dead = false;
  private idleMs: number;

  constructor(
    readonly socket: net.Socket,
    private readonly home: ConnHome,
    /** Where it goes: the pool checks these before reuse (an endpoint may move). */
    readonly address: string,
    readonly port: number,
    /** TlsMaterial.version the connection was made with (0 for plain TCP). */
    readonly version: number,
    /** Mesh connections: the upstream service and endpoint host they belong to ('' for local ones). */
    readonly service: string,
    readonly endpoint: string,
    idleMs: number,
    connected: boolean,
  ) {
    this.connected = connected;
    this.idleMs = idleMs;
    // One socket timeout for the connection's whole life: it fires after idleMs without traffic,
    // which for an idle pooled connection is exactly "idle too long"; in use, the session's own
    // timers apply and the event is ignored. No timer is set or cleared per request.
    socket.setTimeout(idleMs);
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('timeout', this.onTimeout);
    if (!connected) socket.once('connect', this.onConnect);
  }

  /**
   * The peer said how long it keeps an idle connection (`Keep-Alive: timeout=N`): close ours a
   * second before, so a request is never written into a connection the peer is closing (what node's
   * http.Agent does too).
   */
  hintIdle(seconds: number): void {
    const ms = Math.max(500, seconds * 1000 - 1000);
    if (ms < this.idleMs) {
      this.idleMs = ms;
      this.socket.setTimeout(ms);
    }
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    this.owner = null;
    this.socket.destroy();
  }

  private readonly onConnect = (): void => {
    this.connected = true;
  };

  private readonly onData = (chunk: Buffer): void => {
    const o = this.owner;
    if (o !== null) o.upData(this, chunk);
    // Bytes on an idle connection answer nothing we asked: the stream can no longer be trusted.
    else this.die(null);
  };

  private readonly onDrain = (): void => {
    if (this.owner !== null) this.owner.upDrain(this);
  };

  private readonly onEnd = (): void => {
    this.die(null);
  };

  private readonly onError = (err: NodeJS.ErrnoException): void => {
    this.die(err);
  };

  private readonly onClose = (): void => {
    this.die(null);
  };

  private readonly onTimeout = (): void => {
    if (this.owner === null) this.die(null);
  };

  private die(err: NodeJS.ErrnoException | null): void {
    const o = this.owner;
    const first = !this.dead;
    this.dead = true;
    this.owner = null;
    if (first) {
      if (o === null) this.home.forget(this);
      this.socket.destroy();
    }
    if (o !== null) o.upClosed(this, err);
  }
}
