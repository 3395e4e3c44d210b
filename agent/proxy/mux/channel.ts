// A stream of a multiplexed session seen as a socket, for the HTTP/1.1 proxy: its connection loop
// and upstream connections read and write "sockets", and a channel is the part of net.Socket they
// use (data/drain/end/error/close/timeout events, write, end, destroy, pause/resume, setTimeout,
// byte counters). A kept-alive HTTP connection between agents is then a stream, and the requests
// of every connection share the session's TLS records and send() calls.
//
// Semantics follow a net.Socket with allowHalfOpen: the peer's end is 'end' and this side stays
// writable; 'close' comes once both sides ended, or on destroy or reset. A reset from the peer is an
// 'error' with code ECONNRESET first, as a TCP reset would be.
import { EventEmitter } from 'node:events';
import { CREDIT_AFTER, FrameType, MuxProtocolError, REFUSALS, ReceiveWindow, STREAM_WINDOW, header, keepable, resetFrame } from './frames.js';
import type { MuxSession, StreamEnd } from './session.js';

/** Error code of a stream the other agent refused at open (it processed nothing). */
export const STREAM_REFUSED = 'HM_ERR_STREAM_REFUSED';

export class MuxChannel extends EventEmitter implements StreamEnd {
  bytesRead = 0;
  bytesWritten = 0;
  get sentBytes(): number {
    return this.bytesWritten;
  }
  destroyed = false;
  writableNeedDrain = false;
  private sendWindow = STREAM_WINDOW;
  private unacked = 0;
  private readonly window: ReceiveWindow;
  private paused = false;
  private readonly queue: Buffer[] = [];
  /** Written past the send window: sent as credit comes. */
  private readonly pendingOut: Buffer[] = [];
  private finPending = false;
  private flushScheduled = false;
  private gotFin = false;
  private endEmitted = false;
  private sentFin = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly id: number,
    private readonly session: MuxSession,
  ) {
    super();
    this.window = new ReceiveWindow(id);
  }

  get remoteAddress(): string | undefined {
    return this.session.socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.session.socket.remotePort;
  }

  // ---- what the session calls ----

  onData(payload: Buffer): void {
    if (this.gotFin) throw new MuxProtocolError(`data after end on stream ${this.id}`);
    const n = payload.length;
    this.window.received(n);
    if (this.destroyed) return;
    this.bytesRead += n;
    this.timer?.refresh();
    if (this.paused || this.queue.length > 0) {
      this.queue.push(keepable(payload));
      return;
    }
    this.emit('data', payload);
    this.consumed(n);
  }

  onWindow(increment: number): void {
    this.sendWindow += increment;
    if (this.pendingOut.length > 0) this.sendPending();
    if (!this.writableNeedDrain || this.sendWindow <= 0 || this.pendingOut.length > 0) return;
    if (this.session.congested) {
      // Told again when the TLS connection drains: a drain must not be lost to congestion.
      this.session.pauseForSession(this);
      return;
    }
    this.writableNeedDrain = false;
    this.emit('drain');
  }

  /** The session's TLS connection drained. */
  resumeFromSession(): void {
    this.onWindow(0);
  }

  onFin(): void {
    this.gotFin = true;
    this.maybeEmitEnd();
  }

  onAccepted(): void {
    // The HTTP proxy retries a refused request itself (STREAM_REFUSED): nothing kept here.
  }

  abort(reason?: string): void {
    if (this.destroyed) return;
    // Refused at open: the other agent processed nothing, so the request may go again anywhere.
    const refused = reason !== undefined && REFUSALS.has(reason);
    const err = Object.assign(new Error(refused ? `the other agent refused the stream: ${reason}` : 'the stream was reset by the other agent'), {
      code: refused ? STREAM_REFUSED : 'ECONNRESET',
    });
    this.finish(err);
  }

  // ---- what the HTTP code calls, as on a socket ----

  write(chunk: Buffer | string, encoding?: BufferEncoding | (() => void), cb?: () => void): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    if (this.destroyed || this.sentFin) return false;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding ?? 'utf8') : chunk;
    if (buf.length > 0) {
      this.bytesWritten += buf.length;
      this.timer?.refresh();
      // Past the window, bytes wait here (as in a socket's buffer) rather than overrun the peer.
      if (this.pendingOut.length > 0 || this.sendWindow <= 0) this.pendingOut.push(buf);
      else this.sendNow(buf);
    }
    if (cb) process.nextTick(cb);
    if (this.sendWindow <= 0 || this.pendingOut.length > 0 || this.session.congested) {
      if (this.session.congested) this.session.pauseForSession(this);
      this.writableNeedDrain = true;
      return false;
    }
    return true;
  }

  /** Sends `buf`, up to the window; the rest waits in pendingOut. */
  private sendNow(buf: Buffer): void {
    const n = Math.min(buf.length, this.sendWindow);
    this.session.sendData(this.id, n === buf.length ? buf : buf.subarray(0, n));
    this.sendWindow -= n;
    if (n < buf.length) this.pendingOut.push(buf.subarray(n));
  }

  private sendPending(): void {
    while (this.pendingOut.length > 0 && this.sendWindow > 0) this.sendNow(this.pendingOut.shift()!);
    if (this.pendingOut.length === 0 && this.finPending) {
      this.finPending = false;
      this.session.send(header(FrameType.Fin, this.id, 0));
      if (this.endEmitted) this.finish(null);
    }
  }

  end(chunk?: Buffer | string, encoding?: BufferEncoding): this {
    if (chunk !== undefined) this.write(chunk, encoding);
    if (this.destroyed || this.sentFin) return this;
    this.sentFin = true;
    if (this.pendingOut.length > 0) {
      this.finPending = true;
      return this;
    }
    this.session.send(header(FrameType.Fin, this.id, 0));
    if (this.endEmitted) this.finish(null);
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    if (!(this.sentFin && this.gotFin)) this.session.send(resetFrame(this.id, 'RESET'));
    this.finish(null);
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    if ((this.queue.length > 0 || this.gotFin) && !this.flushScheduled) {
      this.flushScheduled = true;
      // As a socket does: what waited is delivered on the next tick, not inside resume().
      process.nextTick(this.flushQueue);
    }
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  setTimeout(ms: number): this {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = ms > 0 ? setTimeout(this.onTimer, ms) : null;
    this.timer?.unref();
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  cork(): void {
    // Frames already leave together at the end of the loop turn.
  }

  uncork(): void {}

  // ---- inside ----

  private readonly onTimer = (): void => {
    if (this.destroyed) return;
    this.timer?.refresh();
    this.emit('timeout');
  };

  private readonly flushQueue = (): void => {
    this.flushScheduled = false;
    while (!this.paused && !this.destroyed && this.queue.length > 0) {
      const p = this.queue.shift()!;
      this.emit('data', p);
      this.consumed(p.length);
    }
    this.maybeEmitEnd();
  };

  private consumed(n: number): void {
    this.unacked += n;
    if (this.unacked >= CREDIT_AFTER) {
      this.session.send(this.window.credit(this.unacked));
      this.unacked = 0;
    }
  }

  private maybeEmitEnd(): void {
    if (!this.gotFin || this.endEmitted || this.destroyed || this.paused || this.queue.length > 0) return;
    this.endEmitted = true;
    this.emit('end');
    if (this.sentFin) this.finish(null);
  }

  private finish(err: Error | null): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.queue.length = 0;
    this.pendingOut.length = 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.session.forget(this);
    process.nextTick(() => {
      if (err && this.listenerCount('error') > 0) this.emit('error', err);
      this.emit('close', err !== null);
    });
  }
}

