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
// No closure per request: socket listeners are bound once per connection (in the layers below and
// in UpstreamConn), and the state of the request in flight lives in fields of this object.
//
// The loop is one object built of three layers, a module each (request-reader.ts says why layers):
//   request-reader.ts      RequestReader: requests read off the client connection; its end, errors, timeouts
//   response-forwarder.ts  ResponseForwarder: responses read off the upstream connection, sent to the client
//   connection-loop.ts     Http1Session: what a side implements and calls; how an exchange starts and ends
// loop-states.ts holds the states they share, and the limits.
import type { RequestHead, ResponseHead } from '../../http/head-parser.js';
import { MergeLimit, Req, Res, Sink } from './loop-states.js';
import { ResponseForwarder } from './response-forwarder.js';
import { CONTINUE_100, errorResponse } from './responses.js';
import type { UpstreamConn } from './upstream-conn.js';

export { CLIENT_IDLE_MS, REQUEST_LIMITS } from './loop-states.js';

export abstract class Http1Session extends ResponseForwarder {
  // ---- what a side implements ----------------------------------------------------------------
  // (The layers below declare the hooks they call; `override` marks those, restated here with
  // their contracts.)

  /**
   * A request head arrived (`this.head`). Answer it (respond), or attach an upstream connection
   * (attach), now or later; or bufferBody() and wait for onBodyBuffered. Until attach, body bytes
   * are held and the client is paused.
   */
  protected abstract override onRequest(head: RequestHead): void;
  /** The body asked for by bufferBody() is complete in `bodyBuf`. */
  protected onBodyBuffered(): void {}
  /** A final response head arrived on `conn`. Return true to forward it; false after detach(). */
  protected abstract override onResponse(rh: ResponseHead): boolean;
  /**
   * `conn` broke before a whole response head (it is already detached). `stale`: it was a reused
   * connection on which no byte of this response arrived, so the request may be sent again on a
   * fresh one. Retry (attach) or respond.
   */
  protected abstract override onUpstreamFailure(err: NodeJS.ErrnoException | null, stale: boolean, connected: boolean): void;
  /** The exchange ends without an outcome from upstream (client gone, malformed body): release what it holds. */
  protected abstract override onAbort(): void;
  /** The exchange is over (answered or aborted): clear per-request state and timers. */
  protected abstract onExchangeEnd(): void;
  /** A connection that finished an exchange cleanly goes back to its pool. */
  protected abstract releaseConn(conn: UpstreamConn): void;
  /** The client connection is gone. */
  protected abstract override onClosed(): void;

  // ---- what a side calls -----------------------------------------------------------------------

  /** Keep the request body whole before anything is sent (the side then gets onBodyBuffered). */
  protected bufferBody(): void {
    this.sink = Sink.Buffer;
  }

  /** Whether the request body is complete (or there is none). */
  protected get requestComplete(): boolean {
    return this.reqState === Req.Done;
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
    this.resState = Res.Head;
    this.resSeen = false;
    this.resPartial = false;
    const s = conn.socket;
    const held = this.sink === Sink.Hold && this.held.length > 0;
    if (!held && (body === null || body.length > MergeLimit.Bytes)) {
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
    if (this.reqState === Req.Done) this.requestSent = true;
    else this.sink = Sink.Up;
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
    this.resState = Res.None;
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
    this.resState = Res.Done;
    const head = this.head;
    // A client still owing its body after `Expect: 100-continue` may never send it: close.
    if (head === null || (this.reqState === Req.Body && head.expectContinue && !this.continued)) this.closeAfter = true;
    this.sink = Sink.Discard;
    this.held.length = 0;
    this.heldBytes = 0;
    const close = this.closeAfter || head === null || !head.keepAlive;
    this.client.write(errorResponse(status, reason, message, close ? 'close' : head.version === '1.0' ? 'keep-alive' : null, extraName, extraValue));
    if (close) this.closeAfter = true;
    // Otherwise the rest of the body is read and dropped, and the connection serves the next request.
    if (this.reqState === Req.Done || close) this.finishExchange(false);
    else if (!this.consuming) this.syncClient();
  }

  /** Close everything now (client and upstream). */
  /** A request is being served: a draining agent waits for it, and closes the connection after. */
  get busy(): boolean {
    return this.inExchange;
  }

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

  /** The exchange is over: release or close its connection, then on to the next request or the close. */
  protected finishExchange(reusable: boolean): void {
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
    this.sink = Sink.Discard;
    this.resState = Res.None;
    this.responded = false;
    this.upBlocked = false;
    this.clientBlocked = false;
    if (this.closeAfter || head === null || !head.keepAlive || (this.clientEnded && this.stash === null)) {
      this.endClient();
      return;
    }
    this.reqState = Req.Head;
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
}
