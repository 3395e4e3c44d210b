// One mTLS connection between two agents carrying many tcp connections as streams (frames.ts).
// Each stream is bound to a plain socket on this side: the app's connection on the calling agent,
// the connection to the local instance on the serving one. Bytes, half-closes and resets cross as
// frames; each direction of each stream is flow-controlled on its own (STREAM_WINDOW), so one slow
// reader holds back its own stream and nothing else.
//
// Frames queued during one event-loop turn are written together in the check phase (setImmediate):
// one TLS record and one send() for everything the turn produced.
import type net from 'node:net';
import type tls from 'node:tls';
import { MuxChannel } from './channel.js';
import { CREDIT_AFTER, FrameReader, FrameType, MAX_PAYLOAD, MuxProtocolError, REFUSALS, ReceiveWindow, STREAM_WINDOW, header, keepable, resetFrame } from './frames.js';

/** The most streams a session carries at once; the calling side opens another session past it. */
export const MAX_STREAMS = 1024;
/** Bytes written to the peer and not yet taken by it, past which we stop reading from it. */
const MAX_UNREAD_OUT = 8 * 1024 * 1024;
/** Stream ids are not reused: a session that used this many takes no new stream (a new one is dialed). */
const MAX_STREAM_ID = 0x7fffffff;
/**
 * Streams the calling agent may waste, at once and per second after that: streams it opens and
 * resets before we sent anything back. Each one can cost a connection to the local instance, and the
 * stream limit does not bound how fast they come: this is HTTP/2's rapid reset (CVE-2023-44487), and
 * the bucket is nghttp2's answer to it. Past it the session takes no new stream (GoAway); the peer
 * must dial a new session, paying a TLS handshake. A stream that was answered is not counted: the
 * calling agent resets http connections it no longer keeps (idle, or past its pool), after use.
 */
export const CHURN_BURST = 1000;
export const CHURN_PER_SECOND = 100;
/** Opens the peer may still send after our GoAway (those already on the way); past that it is ignoring it. */
const OPENS_AFTER_GOAWAY = MAX_STREAMS;

export type Role = 'client' | 'server';

/** One end of a stream as the session drives it: a socket bound to it (MuxStream) or a MuxChannel. */
export interface StreamEnd {
  readonly id: number;
  onData(payload: Buffer): void;
  onWindow(increment: number): void;
  onFin(): void;
  /** The peer reset the stream (with its reason code), or the session is gone (no reason). */
  abort(reason?: string): void;
  /** The session's TLS connection drained after congestion. */
  resumeFromSession(): void;
  /** The server took the stream (client side). */
  onAccepted(): void;
  /** Bytes this side has sent on the stream. */
  readonly sentBytes: number;
}

/** A tcp stream refused at open: what the app sent so far (and whether it ended), to carry elsewhere. */
export type Refused = (sent: Buffer[], ended: boolean) => void;

export class MuxStream implements StreamEnd {
  /** Bytes this side may still send before the peer returns credit. */
  sendWindow = STREAM_WINDOW;
  /** Bytes received and passed on, not yet credited back. */
  private unacked = 0;
  /** Bytes received while the socket was congested: credited when it drains. */
  private held = 0;
  private readonly window: ReceiveWindow;
  sentFin = false;
  gotFin = false;
  private reset = false;
  private pausedForWindow = false;
  pausedForSession = false;
  /** The reason sent to the peer if the socket closes before both halves ended. */
  resetReason = 'RESET';
  /** Payload bytes from the peer / to the peer. */
  bytesIn = 0;
  bytesOut = 0;
  get sentBytes(): number {
    return this.bytesOut;
  }

  /**
   * Client side, until the server accepts the stream: what the app sent, kept to be carried
   * elsewhere if the stream is refused (bounded by the window). Null once accepted.
   */
  private sent: Buffer[] | null = null;
  private onRefused: Refused | null = null;

  constructor(
    readonly id: number,
    readonly socket: net.Socket,
    private readonly session: MuxSession,
    replay?: { sent: Buffer[]; ended: boolean; onRefused: Refused },
  ) {
    this.window = new ReceiveWindow(id);
    if (replay !== undefined) {
      this.sent = [];
      this.onRefused = replay.onRefused;
      for (const b of replay.sent) this.onSocketData(b);
      if (replay.ended) this.onSocketEnd();
    }
    socket.on('data', this.onSocketData);
    socket.on('end', this.onSocketEnd);
    socket.on('drain', this.onSocketDrain);
    socket.on('error', noop);
    socket.on('close', this.onSocketClose);
  }

  private readonly onSocketEnd = (): void => {
    this.sentFin = true;
    this.session.send(header(FrameType.Fin, this.id, 0));
  };

  private readonly onSocketDrain = (): void => this.credit(true);

  private readonly onSocketClose = (): void => {
    // Closed without both halves ending cleanly (error, destroy, reset from our side): tell the peer.
    if (!this.reset && !(this.sentFin && this.gotFin)) this.session.send(resetFrame(this.id, this.resetReason));
    this.session.forget(this);
  };

  onAccepted(): void {
    this.sent = null;
    this.onRefused = null;
  }

  private readonly onSocketData = (chunk: Buffer): void => {
    const s = this.session;
    if (this.sent !== null) this.sent.push(chunk);
    this.bytesOut += chunk.length;
    s.sendData(this.id, chunk);
    this.sendWindow -= chunk.length;
    if (this.sendWindow <= 0) {
      this.pausedForWindow = true;
      this.socket.pause();
    } else if (s.congested && !this.pausedForSession) {
      this.pausedForSession = true;
      s.pauseForSession(this);
      this.socket.pause();
    }
  };

  /** Data frame from the peer. */
  onData(payload: Buffer): void {
    if (this.gotFin) throw new MuxProtocolError(`data after end on stream ${this.id}`);
    const n = payload.length;
    this.window.received(n);
    this.bytesIn += n;
    // Held by the socket if it is already backed up: then a small view is copied (keepable).
    if (this.socket.write(this.socket.writableLength > 0 ? keepable(payload) : payload)) {
      this.unacked += n;
      if (this.unacked >= CREDIT_AFTER) this.credit(false);
    } else {
      this.held += n;
    }
  }

  private credit(drained: boolean): void {
    const n = drained ? this.unacked + this.held : this.unacked;
    if (n === 0) return;
    this.unacked = 0;
    if (drained) this.held = 0;
    this.session.send(this.window.credit(n));
  }

  onWindow(increment: number): void {
    this.sendWindow += increment;
    if (this.pausedForWindow && this.sendWindow > 0) {
      this.pausedForWindow = false;
      if (!this.pausedForSession) this.socket.resume();
    }
  }

  resumeFromSession(): void {
    this.pausedForSession = false;
    if (!this.pausedForWindow) this.socket.resume();
  }

  onFin(): void {
    this.gotFin = true;
    this.socket.end();
  }

  /** The peer reset the stream, or the session is gone. */
  abort(reason?: string): void {
    this.reset = true;
    const onRefused = this.onRefused;
    if (onRefused !== null && this.sent !== null && reason !== undefined && REFUSALS.has(reason) && !this.socket.destroyed) {
      // Nothing reached the service: hand the app's connection back, untouched, to go elsewhere.
      const s = this.socket;
      s.pause();
      s.off('data', this.onSocketData);
      s.off('end', this.onSocketEnd);
      s.off('drain', this.onSocketDrain);
      s.off('error', noop);
      s.off('close', this.onSocketClose);
      this.session.forget(this);
      onRefused(this.sent, this.sentFin);
      return;
    }
    // A reset, not a FIN: the app must not take a cut connection for a clean end.
    this.socket.resetAndDestroy();
  }
}

export interface MuxSessionEvents {
  /** Server side: a new stream; answer at once with session.accept(id, socket) or session.refuse(id, reason). */
  onOpen?(id: number): void;
  /** The session closed (both sides); every stream is gone. */
  onClose?(): void;
  /** A stream ended (after its socket closed). */
  onStreamClosed?(stream: StreamEnd): void;
  /** Serving side: the peer reset more unanswered streams than CHURN_BURST/CHURN_PER_SECOND allow (now going away). */
  onChurn?(): void;
}

const noop = (): void => undefined;

export class MuxSession {
  private readonly streams = new Map<number, StreamEnd>();
  private readonly reader: FrameReader;
  private out: Buffer[] = [];
  private outBytes = 0;
  private flushing = false;
  congested = false;
  private readonly sessionPaused = new Set<StreamEnd>();
  private nextId = 1;
  private reserved = 0;
  private lastPeerId = 0;
  /** No new streams: we or the peer sent GoAway. */
  goingAway = false;
  /** The peer sent GoAway: it answered every Open it read before it, and processes none after. */
  private peerWentAway = false;
  /** Calling side: streams opened and not yet answered (Accepted or a reset). */
  private readonly unanswered = new Set<number>();
  private churnTokens = CHURN_BURST;
  private churnAt = performance.now();
  private opensAfterGoAway = 0;
  closed = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private expiryTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly socket: tls.TLSSocket,
    readonly role: Role,
    private readonly events: MuxSessionEvents,
    private readonly idleMs: number,
    /** TlsMaterial.version the session was made with (client side): pools retire older ones. */
    readonly version = 0,
  ) {
    this.reader = new FrameReader((t, id, p) => this.onFrame(t, id, p));
    socket.on('data', (chunk: Buffer) => {
      try {
        this.reader.push(chunk);
      } catch (e) {
        this.destroy(e instanceof Error ? e : new Error(String(e)));
      }
    });
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => undefined);
    socket.on('end', () => this.destroy());
    socket.on('close', () => this.destroy());
    this.armIdle();
    this.watchExpiry();
    socket.resume();
  }

  /**
   * The peer's certificate was checked at the handshake only: when it expires, the session takes no
   * new stream (the next one dials again and the peer must show a current certificate).
   */
  private watchExpiry(): void {
    const validTo = this.socket.getPeerX509Certificate?.()?.validTo;
    const notAfter = validTo ? Date.parse(validTo) : NaN;
    if (!Number.isFinite(notAfter)) return;
    const check = (): void => {
      const left = notAfter - Date.now();
      if (left <= 0) {
        this.expiryTimer = null;
        this.goAway();
        return;
      }
      this.expiryTimer = setTimeout(check, Math.min(left, 0x7fffffff));
      this.expiryTimer.unref();
    };
    check();
  }

  /** Streams carried now. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Can carry one more new stream. */
  get open(): boolean {
    return !this.closed && !this.goingAway && this.streams.size + this.reserved < MAX_STREAMS && this.nextId + this.reserved < MAX_STREAM_ID;
  }

  /**
   * Client side: hold a place for a stream about to be opened (callers that waited on the same dial
   * all see `open` before any of them opens). openStream/openChannel take it; release() gives it back.
   */
  reserve(): void {
    this.reserved++;
  }

  release(): void {
    if (this.reserved > 0) this.reserved--;
  }

  /**
   * Client side: carry `socket` as a new stream. `onRefused` gets the connection back if the
   * server refuses the stream at open; `replay` is what the app sent on a stream refused before.
   */
  openStream(socket: net.Socket, onRefused?: Refused, replay?: { sent: Buffer[]; ended: boolean }): MuxStream {
    this.release();
    const id = this.nextId;
    this.nextId += 1;
    this.send(header(FrameType.Open, id, 0));
    this.unanswered.add(id);
    const stream = new MuxStream(id, socket, this, onRefused ? { sent: replay?.sent ?? [], ended: replay?.ended ?? false, onRefused } : undefined);
    this.streams.set(id, stream);
    this.disarmIdle();
    if (!stream.sentFin) socket.resume();
    return stream;
  }

  /** Client side: a new stream used as a socket (the HTTP proxy's connections to other agents). */
  openChannel(): MuxChannel {
    this.release();
    const id = this.nextId;
    this.nextId += 1;
    const ch = new MuxChannel(id, this);
    this.streams.set(id, ch);
    this.disarmIdle();
    this.send(header(FrameType.Open, id, 0));
    this.unanswered.add(id);
    return ch;
  }

  /** Server side, from onOpen: stream `id` used as a socket (an HTTP connection from the caller). */
  acceptChannel(id: number): MuxChannel {
    const ch = new MuxChannel(id, this);
    this.streams.set(id, ch);
    this.disarmIdle();
    this.send(header(FrameType.Accepted, id, 0));
    return ch;
  }

  /** Queue `buf` as Data frames of stream `id`, cut at MAX_PAYLOAD. */
  sendData(id: number, buf: Buffer): void {
    const n = buf.length;
    if (n <= MAX_PAYLOAD) {
      this.send(header(FrameType.Data, id, n), buf);
      return;
    }
    for (let at = 0; at < n; at += MAX_PAYLOAD) {
      const part = buf.subarray(at, Math.min(n, at + MAX_PAYLOAD));
      this.send(header(FrameType.Data, id, part.length), part);
    }
  }

  /** Queue frames; they leave together at the end of this event-loop turn. */
  send(a: Buffer, b?: Buffer): void {
    if (this.closed) return;
    this.out.push(a);
    this.outBytes += a.length;
    if (b !== undefined) {
      this.out.push(b);
      this.outBytes += b.length;
    }
    if (!this.flushing) {
      this.flushing = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.flushing = false;
    if (this.closed || this.out.length === 0) return;
    const data = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    if (!this.socket.write(data)) {
      this.congested = true;
      // Windows bound the data we queue, not our answers (resets, credit) to a peer that sends
      // and never reads: past this, stop reading it until it takes what we wrote.
      if (this.socket.writableLength > MAX_UNREAD_OUT && !this.socket.isPaused()) this.socket.pause();
    }
  };

  pauseForSession(s: StreamEnd): void {
    this.sessionPaused.add(s);
  }

  private onDrain(): void {
    this.congested = false;
    if (this.socket.isPaused()) this.socket.resume();
    for (const s of this.sessionPaused) s.resumeFromSession();
    this.sessionPaused.clear();
  }

  /** No new streams from now; close once the last one ends. */
  goAway(): void {
    if (this.closed || this.goingAway) return;
    this.goingAway = true;
    this.send(header(FrameType.GoAway, 0, 0));
    if (this.streams.size === 0) this.close();
  }

  forget(s: StreamEnd): void {
    if (this.streams.get(s.id) !== s) return;
    this.streams.delete(s.id);
    this.unanswered.delete(s.id);
    this.sessionPaused.delete(s);
    this.events.onStreamClosed?.(s);
    if (this.streams.size === 0) {
      if (this.goingAway) this.close();
      else this.armIdle();
    }
  }

  /** Close after writing what is queued. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.socket.end();
    this.destroy();
  }

  destroy(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.disarmIdle();
    if (this.expiryTimer !== null) clearTimeout(this.expiryTimer);
    if (err) this.socket.destroy();
    else if (!this.socket.writableEnded) this.socket.destroy();
    // After the peer's GoAway, a stream it never answered was never processed: it is refused, and
    // goes elsewhere like one refused at open (a drain or an idle close racing a new stream).
    for (const s of this.streams.values()) s.abort(this.peerWentAway && this.unanswered.has(s.id) ? 'GOING_AWAY' : undefined);
    this.streams.clear();
    this.unanswered.clear();
    this.sessionPaused.clear();
    this.events.onClose?.();
  }

  private onFrame(type: number, id: number, payload: Buffer): void {
    if (this.closed) return;
    if (type === FrameType.Data) {
      // A stream we reset may still have frames in flight: dropped.
      this.streams.get(id)?.onData(payload);
      return;
    }
    if (type === FrameType.Window) {
      if (payload.length !== 4) throw new MuxProtocolError('window frame without a 4-byte increment');
      this.streams.get(id)?.onWindow(payload.readUInt32BE(0));
      return;
    }
    if (type === FrameType.Fin) {
      this.streams.get(id)?.onFin();
      return;
    }
    if (type === FrameType.Reset) {
      const stream = this.streams.get(id);
      if (stream === undefined) return;
      this.unanswered.delete(id);
      if (this.role === 'server' && stream.sentBytes === 0) this.churn();
      stream.abort(payload.toString('latin1'));
      return;
    }
    if (type === FrameType.Accepted) {
      if (this.role !== 'client') throw new MuxProtocolError('the calling agent sent Accepted');
      this.unanswered.delete(id);
      this.streams.get(id)?.onAccepted();
      return;
    }
    if (type === FrameType.GoAway) {
      this.goingAway = true;
      this.peerWentAway = true;
      if (this.streams.size === 0) this.close();
      return;
    }
    // Open
    if (this.role !== 'server') throw new MuxProtocolError('the serving agent opened a stream');
    if (id <= this.lastPeerId) throw new MuxProtocolError(`stream id ${id} reused or out of order`);
    this.lastPeerId = id;
    if (this.goingAway) {
      if (++this.opensAfterGoAway > OPENS_AFTER_GOAWAY) throw new MuxProtocolError(`the calling agent sent ${OPENS_AFTER_GOAWAY} streams after GoAway`);
      return void this.send(resetFrame(id, 'GOING_AWAY'));
    }
    // Slack over the caller's limit: a tcp stream can end on the caller's side a moment before ours.
    if (this.streams.size >= MAX_STREAMS + MAX_STREAMS / 4) return void this.refuse(id, 'TOO_MANY_STREAMS');
    if (this.events.onOpen) this.events.onOpen(id);
    else this.refuse(id, 'NOT_ACCEPTED');
  }

  /** Server side, from onOpen: carry stream `id` to and from `socket`. */
  accept(id: number, socket: net.Socket): MuxStream {
    const stream = new MuxStream(id, socket, this);
    this.streams.set(id, stream);
    this.disarmIdle();
    this.send(header(FrameType.Accepted, id, 0));
    return stream;
  }

  /** Server side, from onOpen: reset stream `id` with a reason code. */
  refuse(id: number, reason: string): void {
    this.send(resetFrame(id, reason));
  }

  /** A stream the peer opened and reset before it got anything: past the budget, no new stream. */
  private churn(): void {
    if (this.goingAway) return;
    const now = performance.now();
    this.churnTokens = Math.min(CHURN_BURST, this.churnTokens + ((now - this.churnAt) / 1000) * CHURN_PER_SECOND);
    this.churnAt = now;
    if (--this.churnTokens >= 0) return;
    this.events.onChurn?.();
    this.goAway();
  }

  private armIdle(): void {
    if (this.idleMs <= 0 || this.closed) return;
    this.disarmIdle();
    // GoAway first: an Open already on its way is then refused, not lost with the connection.
    this.idleTimer = setTimeout(() => (this.goingAway ? this.close() : this.goAway()), this.idleMs);
    this.idleTimer.unref();
  }

  private disarmIdle(): void {
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
  }
}

