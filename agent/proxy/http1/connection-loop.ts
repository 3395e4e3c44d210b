// The HTTP/1.1 byte-forwarding loop both sides of the L7 proxy share: one client connection, one
// request at a time. The request head is parsed strictly (agent/http/head-parser.ts) and handed to
// the side (inbound-session.ts, outbound-session.ts), which decides and rewrites it; the body is
// forwarded as the bytes that came in, its end found by BodyFramer; the response head is parsed
// on the upstream connection and forwarded (as received when it needs no edit), then its body, and
// both connections are reused for the next request.
//
// Why not node:http: it parses each message into objects and re-serializes it on the way out,
// twice per agent; here a request costs one head parse and one head write per agent, and body
// bytes are never copied.
//
// Flow control, both ways: a write that returns false (or leaves writableNeedDrain) pauses the
// other socket until 'drain'. Pipelined requests are read in order: once a request is complete the
// client socket is paused and any bytes after it wait in `stash` until the response is done.
//
// No closure per request: socket listeners are bound once per connection (here and in
// UpstreamConn), and the state of the request in flight lives in fields of this object.
import type net from 'node:net';
import { HEAD_ERROR, HEAD_ERROR_STATUS, NEED_MORE, RequestHeadParser, type RequestHead, type ResponseHead } from '../../http/head-parser.js';
import { serializeResponseHead } from '../../http/head-writer.js';
import { BODY_ERROR, BODY_NEED_MORE, BodyFramer } from './body-framer.js';
import { hasHopByHop, keepAliveTimeout, stripForForward } from './forward-headers.js';
import { CONTINUE_100, errorResponse } from './responses.js';
import type { ConnOwner, UpstreamConn } from './upstream-conn.js';

/** Request head limits, as the node:http listeners had (16 KiB head). */
export const REQUEST_LIMITS = { maxHeadSize: 16 * 1024, maxHeaders: 100 };
/**
 * Idle time after which a client connection is closed (node's keepAliveTimeout was 30 s). It is a
 * socket inactivity timeout, so it also bounds a client that stalls mid-head or mid-body, or stops
 * reading its response.
 */
export const CLIENT_IDLE_MS = 30_000;
/** Body bytes up to this size are copied behind a rewritten head to make one write. */
const MERGE_LIMIT = 16 * 1024;

// Request side.
const R_HEAD = 0; // reading a head (or idle between requests)
const R_BODY = 1; // reading the request body
const R_DONE = 2; // request complete; client paused until the response is done

// Response side.
const S_NONE = 0; // no upstream response expected (not attached yet)
const S_HEAD = 1; // waiting for / parsing the response head
const S_BODY = 2; // forwarding the response body
const S_DONE = 3; // response complete (the upstream's or our own)

// Where request body bytes go.
const SINK_HOLD = 0; // kept until an upstream connection is attached (the client is paused meanwhile)
const SINK_UP = 1; // written to the upstream connection
const SINK_BUFFER = 2; // kept whole so the request can be retried (small bodies, outbound)
const SINK_DISCARD = 3; // dropped: the request was answered by the proxy itself

export abstract class Http1Session implements ConnOwner {
  /** The request in flight (null between requests). Its `headers` array is the side's to edit. */
  protected head: RequestHead | null = null;
  /** The upstream connection carrying the request in flight. */
  protected conn: UpstreamConn | null = null;
  protected closed = false;
  /** The whole request body once buffered (SINK_BUFFER), for onBodyBuffered and retries. */
  protected bodyBuf: Buffer | null = null;
  /** Body bytes of the request in flight read so far (for access logs: one add per chunk). */
  protected reqBodyBytes = 0;

  private readonly parser = new RequestHeadParser(REQUEST_LIMITS);
  private readonly reqBody = new BodyFramer();
  private reqState = R_HEAD;
  private resState = S_NONE;
  private sink = SINK_DISCARD;
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private stash: Buffer | null = null;
  private partial = false; // the parser holds part of a head
  private consuming = false; // inside consume(): do not re-enter it
  private inExchange = false;
  private responded = false; // a response head (the upstream's or ours) went to the client
  private continued = false; // we sent `100 Continue`
  private closeAfter = false; // close the client connection once this exchange is over
  private requestSent = false; // the whole request is on `conn`
  private resSeen = false; // a byte of response arrived on `conn` for this request
  private resPartial = false; // the response head spans chunks (so it is not forwarded raw)
  private resKeepAlive = false;
  private upBlocked = false; // conn's write buffer is full: client paused
  private clientBlocked = false; // client's write buffer is full: conn paused
  private clientEnded = false;

  constructor(protected readonly client: net.Socket) {
    client.setNoDelay(true);
    client.setTimeout(CLIENT_IDLE_MS);
    client.on('data', this.onClientData);
    client.on('drain', this.onClientDrain);
    client.on('end', this.onClientEnd);
    client.on('timeout', this.onClientTimeout);
    client.on('error', this.onClientError);
    client.on('close', this.onClientClose);
  }

  // ---- what a side implements ----------------------------------------------------------------

  /**
   * A request head arrived (`this.head`). Answer it (respond), or attach an upstream connection
   * (attach), now or later; or bufferBody() and wait for onBodyBuffered. Until attach, body bytes
   * are held and the client is paused.
   */
  protected abstract onRequest(head: RequestHead): void;
  /** The body asked for by bufferBody() is complete in `bodyBuf`. */
  protected onBodyBuffered(): void {}
  /** A final response head arrived on `conn`. Return true to forward it; false after detach(). */
  protected abstract onResponse(rh: ResponseHead): boolean;
  /**
   * `conn` broke before a whole response head (it is already detached). `stale`: it was a reused
   * connection on which no byte of this response arrived, so the request may be sent again on a
   * fresh one. Retry (attach) or respond.
   */
  protected abstract onUpstreamFailure(err: NodeJS.ErrnoException | null, stale: boolean, connected: boolean): void;
  /** The exchange ends without an outcome from upstream (client gone, malformed body): release what it holds. */
  protected abstract onAbort(): void;
  /** The exchange is over (answered or aborted): clear per-request state and timers. */
  protected abstract onExchangeEnd(): void;
  /** A connection that finished an exchange cleanly goes back to its pool. */
  protected abstract releaseConn(conn: UpstreamConn): void;
  /** The client connection is gone. */
  protected abstract onClosed(): void;

  // ---- what a side calls -----------------------------------------------------------------------

  /** Keep the request body whole before anything is sent (the side then gets onBodyBuffered). */
  protected bufferBody(): void {
    this.sink = SINK_BUFFER;
  }

  /** Whether the request body is complete (or there is none). */
  protected get requestComplete(): boolean {
    return this.reqState === R_DONE;
  }

  /** Tell a client waiting on `Expect: 100-continue` to send its body (we take it either way). */
  protected sendContinue(): void {
    if (this.continued || this.head === null || !this.head.expectContinue) return;
    this.continued = true;
    this.client.write(CONTINUE_100);
  }

  /**
   * Send the request on `conn`: the rewritten head (latin1), then `body` (a buffered body) or the
   * bytes held so far, then the rest of the body as it arrives.
   */
  protected attach(conn: UpstreamConn, head: string, body: Buffer | null): void {
    this.conn = conn;
    conn.owner = this;
    conn.parser.requestMethod = (this.head as RequestHead).method;
    this.resState = S_HEAD;
    this.resSeen = false;
    this.resPartial = false;
    const s = conn.socket;
    const held = this.sink === SINK_HOLD && this.held.length > 0;
    if (!held && (body === null || body.length > MERGE_LIMIT)) {
      s.write(head, 'latin1');
      if (body !== null) s.write(body);
    } else if (!held && body !== null) {
      // A small buffered body goes in the same write as the head (one syscall, one TLS record).
      const buf = Buffer.allocUnsafe(head.length + body.length);
      buf.write(head, 0, 'latin1');
      body.copy(buf, head.length);
      s.write(buf);
    } else {
      s.cork();
      s.write(head, 'latin1');
      if (body !== null) s.write(body);
      for (const b of this.held) s.write(b);
      this.held.length = 0;
      this.heldBytes = 0;
      s.uncork();
    }
    this.upBlocked = s.writableNeedDrain;
    if (this.reqState === R_DONE) this.requestSent = true;
    else this.sink = SINK_UP;
    if (!this.consuming) this.syncClient();
  }

  /** Drop the upstream connection of the request in flight (a retry, a timeout): it is closed. */
  protected detach(): void {
    const c = this.conn;
    if (c !== null) {
      this.conn = null;
      c.owner = null;
      c.destroy();
    }
    this.resState = S_NONE;
    this.upBlocked = false;
  }

  /**
   * Answer the request in flight ourselves: `status`, `x-hostmesh-error: reason`, a one-line body.
   * If a response is already under way there is nothing left to say: the connection is closed.
   */
  protected respond(status: number, reason: string, message: string, extraName: string | null = null, extraValue = ''): void {
    if (this.closed) return;
    if (this.responded) {
      this.teardown();
      return;
    }
    this.responded = true;
    if (this.conn !== null) this.detach();
    this.resState = S_DONE;
    const head = this.head;
    // A client still owing its body after `Expect: 100-continue` may never send it: close.
    if (head === null || (this.reqState === R_BODY && head.expectContinue && !this.continued)) this.closeAfter = true;
    this.sink = SINK_DISCARD;
    this.held.length = 0;
    this.heldBytes = 0;
    const close = this.closeAfter || head === null || !head.keepAlive;
    this.client.write(errorResponse(status, reason, message, close ? 'close' : head.version === '1.0' ? 'keep-alive' : null, extraName, extraValue));
    if (close) this.closeAfter = true;
    // Otherwise the rest of the body is read and dropped, and the connection serves the next request.
    if (this.reqState === R_DONE || close) this.finishExchange(false);
    else if (!this.consuming) this.syncClient();
  }

  /** Close everything now (client and upstream). */
  teardown(): void {
    if (this.closed) return;
    this.closed = true;
    const c = this.conn;
    if (c !== null) {
      this.conn = null;
      c.owner = null;
      c.destroy();
    }
    if (this.inExchange) {
      this.inExchange = false;
      this.onAbort();
      this.onExchangeEnd();
    }
    this.client.destroy();
  }

  // ---- the request side ------------------------------------------------------------------------

  private readonly onClientData = (chunk: Buffer): void => {
    if (this.closed) return;
    if (this.consuming || this.reqState === R_DONE) {
      this.addStash(chunk, 0);
      this.client.pause();
      return;
    }
    this.consume(chunk, 0);
  };

  private consume(chunk: Buffer, start: number): void {
    this.consuming = true;
    const len = chunk.length;
    let off = start;
    while (off < len && !this.closed) {
      if (this.reqState === R_HEAD) {
        const end = this.parser.execute(chunk, off);
        if (end === NEED_MORE) {
          this.partial = true;
          break;
        }
        if (end === HEAD_ERROR) {
          this.headError();
          break;
        }
        this.partial = false;
        this.startRequest(this.parser.head as RequestHead);
        off = end;
      } else if (this.reqState === R_BODY) {
        const e = this.reqBody.feed(chunk, off);
        if (e === BODY_ERROR) {
          this.bodyError();
          break;
        }
        const end = e === BODY_NEED_MORE ? len : e;
        if (end > off) this.deliver(off === 0 && end === len ? chunk : chunk.subarray(off, end));
        off = end;
        if (e !== BODY_NEED_MORE) this.requestBodyDone();
      } else {
        // The next request (pipelined) waits until this one is answered.
        this.addStash(chunk, off);
        break;
      }
    }
    this.consuming = false;
    this.syncClient();
  }

  private startRequest(head: RequestHead): void {
    this.head = head;
    this.inExchange = true;
    this.responded = false;
    this.continued = false;
    // A client that will not reuse the connection is told so in the response (RFC 9112 §9.6), as
    // node:http did; the upstream's own Connection field is hop-by-hop and is not forwarded.
    this.closeAfter = !head.keepAlive;
    this.requestSent = false;
    this.resState = S_NONE;
    this.bodyBuf = null;
    this.reqBodyBytes = 0;
    this.sink = SINK_HOLD;
    this.reqBody.start(head.body, head.contentLength);
    this.reqState = head.body === 'none' ? R_DONE : R_BODY;
    if (head.method === 'CONNECT') {
      // Tunnels are not proxied (neither were they by the node:http version).
      this.closeAfter = true;
      this.respond(405, 'METHOD_NOT_ALLOWED', 'CONNECT is not supported by this proxy');
      return;
    }
    this.onRequest(head);
  }

  private deliver(buf: Buffer): void {
    this.reqBodyBytes += buf.length;
    switch (this.sink) {
      case SINK_UP: {
        const c = this.conn;
        if (c !== null) {
          if (!c.socket.write(buf)) this.upBlocked = true;
          return;
        }
        // Between connections (a side re-attaching): hold.
        this.held.push(buf);
        this.heldBytes += buf.length;
        this.sink = SINK_HOLD;
        return;
      }
      case SINK_HOLD:
      case SINK_BUFFER:
        this.held.push(buf);
        this.heldBytes += buf.length;
        return;
      default:
        return; // SINK_DISCARD
    }
  }

  private requestBodyDone(): void {
    this.reqState = R_DONE;
    if (this.sink === SINK_UP) {
      this.requestSent = true;
    } else if (this.sink === SINK_BUFFER) {
      this.bodyBuf = this.held.length === 1 ? (this.held[0] as Buffer) : Buffer.concat(this.held, this.heldBytes);
      this.held.length = 0;
      this.heldBytes = 0;
      this.sink = SINK_HOLD;
      this.onBodyBuffered();
      return;
    }
    // Answered by us while the body was still coming: the body is now drained, next request.
    if (this.resState === S_DONE) this.finishExchange(false);
  }

  private headError(): void {
    const code = this.parser.error ?? 'BAD_REQUEST_LINE';
    this.inExchange = true;
    this.head = null;
    this.closeAfter = true;
    this.respond(HEAD_ERROR_STATUS[code], code, `malformed request: ${code}`);
  }

  private bodyError(): void {
    const code = this.reqBody.chunked.error ?? 'BAD_CHUNK_SIZE';
    this.closeAfter = true;
    if (this.conn !== null) this.detach();
    this.onAbort();
    this.respond(400, code, `malformed request body: ${code}`);
  }

  private addStash(chunk: Buffer, off: number): void {
    const piece = off === 0 ? chunk : chunk.subarray(off);
    this.stash = this.stash === null ? piece : Buffer.concat([this.stash, piece]);
  }

  /** Read from the client only when a request can take the bytes. */
  private syncClient(): void {
    if (this.closed) return;
    const flow = this.reqState === R_HEAD || (this.reqState === R_BODY && this.sink !== SINK_HOLD && !this.upBlocked);
    const paused = this.client.isPaused();
    if (flow) {
      if (paused) this.client.resume();
    } else if (!paused) {
      this.client.pause();
    }
  }

  private readonly onClientDrain = (): void => {
    if (!this.clientBlocked) return;
    this.clientBlocked = false;
    if (this.conn !== null) this.conn.socket.resume();
  };

  private readonly onClientEnd = (): void => {
    this.clientEnded = true;
    if (this.closed) return;
    if (!this.inExchange) {
      if (this.partial) this.teardown();
      else this.endClient();
    } else if (this.reqState === R_BODY) {
      // The body was cut short.
      this.teardown();
    }
    // R_DONE: answer this request, then close (finishExchange sees clientEnded).
  };

  private readonly onClientTimeout = (): void => {
    if (this.closed || !this.inExchange) {
      if (this.partial && !this.closed) {
        this.inExchange = true;
        this.closeAfter = true;
        this.respond(408, 'REQUEST_TIMEOUT', 'the request head did not arrive in time');
      } else if (this.closed) {
        this.client.destroy();
      } else {
        this.endClient(); // idle keep-alive connection: close it cleanly
      }
      return;
    }
    if (this.clientBlocked) {
      // It has taken no byte of its response for the whole idle time, and holds an upstream
      // connection (paused on its behalf) for nothing: drop both.
      this.teardown();
      return;
    }
    // Mid-body, only if we were reading: a client we paused (the upstream not taking the body, no
    // connection yet) is not the one that stalled, and the side's own timers apply.
    if (this.reqState === R_BODY && this.sink !== SINK_HOLD && !this.upBlocked) {
      this.closeAfter = true;
      if (this.conn !== null) this.detach();
      this.onAbort();
      this.respond(408, 'REQUEST_TIMEOUT', 'the request body did not arrive in time');
    }
    // Waiting on the upstream: the side's own timers apply.
  };

  private readonly onClientError = (): void => {
    this.teardown();
  };

  private readonly onClientClose = (): void => {
    this.teardown();
    this.onClosed();
  };

  private endClient(): void {
    this.closed = true;
    this.client.end();
    // Keep reading (and dropping) so the peer's FIN is seen and the socket closes.
    this.client.resume();
  }

  // ---- the response side -----------------------------------------------------------------------

  upData(conn: UpstreamConn, chunk: Buffer): void {
    if (conn !== this.conn || this.closed) return;
    this.resSeen = true;
    const client = this.client;
    const len = chunk.length;
    let off = 0;
    // The response head is not written at once: it goes out with the body bytes that follow it in
    // this chunk, as one write (one syscall, one TLS record). `rawFrom`: the head is forwarded as
    // received, from that offset; `headStr`: it was rewritten.
    let rawFrom = -1;
    let headStr: string | null = null;
    let finished = false;
    let extra = false;
    while (off < len) {
      if (this.resState === S_HEAD) {
        const start = off;
        const end = conn.parser.execute(chunk, off);
        if (end === NEED_MORE) {
          this.resPartial = true;
          break;
        }
        if (end === HEAD_ERROR || (conn.parser.head as ResponseHead).tunnel) {
          // A malformed head, or a protocol switch we never asked for (upgrades are stripped).
          this.detach();
          this.onUpstreamFailure(null, false, true);
          return;
        }
        const rh = conn.parser.head as ResponseHead;
        off = end;
        if (rh.interim) {
          // 100 Continue, 103 Early Hints: passed on to HTTP/1.1 clients; the final response follows.
          if ((this.head as RequestHead).version === '1.1') client.write(serializeResponseHead(rh.status, rh.reason, '1.1', rh.headers), 'latin1');
          this.resPartial = false;
          continue;
        }
        if (!this.onResponse(rh)) return; // the side dropped this connection (a retry)
        this.responded = true;
        this.resKeepAlive = rh.keepAlive;
        // Answered before the request was all sent: the rest of it cannot be framed for reuse.
        if (this.reqState !== R_DONE) this.closeAfter = true;
        conn.body.start(rh.body, rh.contentLength);
        this.resState = rh.body === 'none' ? S_DONE : S_BODY;
        headStr = this.responseHead(conn, rh, chunk, start);
        if (headStr === null) rawFrom = start;
        this.resPartial = false;
        if (this.resState === S_DONE) {
          finished = true;
          extra = off < len;
          break;
        }
      } else if (this.resState === S_BODY) {
        const e = conn.body.feed(chunk, off);
        if (e === BODY_ERROR) {
          this.teardown();
          return;
        }
        const end = e === BODY_NEED_MORE ? len : e;
        if (rawFrom !== -1) {
          client.write(rawFrom === 0 && end === len ? chunk : chunk.subarray(rawFrom, end));
          rawFrom = -1;
        } else if (headStr !== null) {
          this.writeHeadAndBody(headStr, chunk, off, end);
          headStr = null;
        } else if (end > off) {
          client.write(off === 0 && end === len ? chunk : chunk.subarray(off, end));
        }
        off = end;
        if (e !== BODY_NEED_MORE) {
          finished = true;
          extra = off < len;
          break;
        }
      } else {
        extra = true;
        break;
      }
    }
    // A head with no body bytes after it in this chunk.
    if (rawFrom !== -1) client.write(chunk.subarray(rawFrom, off));
    else if (headStr !== null) client.write(headStr, 'latin1');
    if (finished) {
      this.responseDone(extra);
      return;
    }
    if (client.writableNeedDrain && !this.clientBlocked) {
      this.clientBlocked = true;
      conn.socket.pause();
    }
  }

  /**
   * Null when the response head can go as it came (the common case between two agents: no copy,
   * no serialization); otherwise the head rewritten without hop-by-hop fields.
   */
  private responseHead(conn: UpstreamConn, rh: ResponseHead, chunk: Buffer, start: number): string | null {
    const req = this.head as RequestHead;
    const keepAlive10 = req.version === '1.0' && req.keepAlive && !this.closeAfter && rh.body !== 'until-close';
    if (!this.resPartial && !keepAlive10 && !this.closeAfter && chunk[start] === 0x48 && !hasHopByHop(rh.headers)) return null;
    const h = rh.headers;
    const ka = keepAliveTimeout(h);
    if (ka > 0) conn.hintIdle(ka);
    stripForForward(h);
    if (this.closeAfter) h.push('connection', 'close');
    else if (keepAlive10) h.push('connection', 'keep-alive');
    return serializeResponseHead(rh.status, rh.reason, rh.version, h);
  }

  /** A rewritten head and the body bytes chunk[from, end) after it, as one write. */
  private writeHeadAndBody(head: string, chunk: Buffer, from: number, end: number): void {
    const n = end - from;
    if (n <= MERGE_LIMIT) {
      // Copying a few KiB is cheaper than a writev of a string and a buffer (and on TLS it is one record).
      const buf = Buffer.allocUnsafe(head.length + n);
      buf.write(head, 0, 'latin1');
      chunk.copy(buf, head.length, from, end);
      this.client.write(buf);
      return;
    }
    this.client.cork();
    this.client.write(head, 'latin1');
    this.client.write(chunk.subarray(from, end));
    this.client.uncork();
  }

  private responseDone(extra: boolean): void {
    this.resState = S_DONE;
    const conn = this.conn;
    // Bytes after the end of the response answer nothing we asked: that connection is not reused.
    const reusable = conn !== null && !extra && this.resKeepAlive && this.requestSent && !conn.dead;
    this.finishExchange(reusable);
  }

  private finishExchange(reusable: boolean): void {
    if (!this.inExchange) return;
    this.inExchange = false;
    const conn = this.conn;
    if (conn !== null) {
      this.conn = null;
      conn.owner = null;
      if (reusable) {
        conn.served++;
        if (this.clientBlocked) conn.socket.resume();
        this.releaseConn(conn);
      } else {
        conn.destroy();
      }
    }
    this.onExchangeEnd();
    const head = this.head;
    this.head = null;
    this.held.length = 0;
    this.heldBytes = 0;
    this.bodyBuf = null;
    this.sink = SINK_DISCARD;
    this.resState = S_NONE;
    this.responded = false;
    this.upBlocked = false;
    this.clientBlocked = false;
    if (this.closeAfter || head === null || !head.keepAlive || (this.clientEnded && this.stash === null)) {
      this.endClient();
      return;
    }
    this.reqState = R_HEAD;
    if (this.consuming) return; // the running consume() loop carries on with the next bytes
    const s = this.stash;
    if (s !== null) {
      this.stash = null;
      this.consume(s, 0);
    } else {
      this.syncClient();
    }
    if (!this.closed && this.clientEnded && !this.inExchange) {
      if (this.partial) this.teardown();
      else this.endClient();
    }
  }

  upDrain(conn: UpstreamConn): void {
    if (conn !== this.conn || !this.upBlocked) return;
    this.upBlocked = false;
    this.syncClient();
  }

  upClosed(conn: UpstreamConn, err: NodeJS.ErrnoException | null): void {
    if (conn !== this.conn) return;
    this.conn = null;
    const st = this.resState;
    this.resState = S_NONE;
    this.upBlocked = false;
    if (st === S_HEAD) {
      this.onUpstreamFailure(err, !this.resSeen && conn.served > 0, conn.connected);
    } else if (st === S_BODY) {
      if (conn.body.kind === 'until-close' && err === null) {
        // The close is the end of this body (and so of the client connection too).
        this.resState = S_DONE;
        this.closeAfter = true;
        this.finishExchange(false);
      } else {
        // Cut short: closing is the only way to tell the client its body is incomplete.
        this.teardown();
      }
    }
  }
}
