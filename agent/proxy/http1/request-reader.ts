// The first layer of the HTTP/1.1 connection loop (connection-loop.ts): reading requests off the
// client connection. Heads are parsed strictly, bodies framed and passed on as the bytes that came
// in, a pipelined request kept in `stash` until the one before it is answered; the client's end,
// errors and timeouts are handled here.
//
// The loop is one object per connection built of three classes, each a layer over the one before
// (RequestReader, ResponseForwarder, Http1Session), so that the state of the exchange in flight is
// fields of that one object: the hot path reads them and calls across layers as it did within one
// class, with no closure, no extra object and no indirection.
import type net from 'node:net';
import { HEAD_ERROR, HEAD_ERROR_STATUS, NEED_MORE, RequestHeadParser, type RequestHead } from '../../http/head-parser.js';
import { IDENTITY_HEADERS } from '../../http/head-writer.js';
import { BODY_ERROR, BODY_NEED_MORE, BodyFramer } from './body-framer.js';
import { CLIENT_IDLE_MS, Req, REQUEST_LIMITS, Res, Sink } from './loop-states.js';
import type { UpstreamConn } from './upstream-conn.js';

export abstract class RequestReader {
  /** The request in flight (null between requests). Its `headers` array is the side's to edit. */
  protected head: RequestHead | null = null;
  /** The upstream connection carrying the request in flight. */
  protected conn: UpstreamConn | null = null;
  protected closed = false;
  /** The whole request body once buffered (Sink.Buffer), for onBodyBuffered and retries. */
  protected bodyBuf: Buffer | null = null;
  /** Body bytes of the request in flight read so far (for access logs: one add per chunk). */
  protected reqBodyBytes = 0;

  // The exchange in flight, as the layers of the loop share it (the sides keep to the fields above).
  protected reqState = Req.Head;
  protected resState = Res.None;
  protected sink = Sink.Discard;
  protected readonly held: Buffer[] = [];
  protected heldBytes = 0;
  protected stash: Buffer | null = null;
  protected partial = false; // the parser holds part of a head
  protected consuming = false; // inside consume(): do not re-enter it
  protected inExchange = false;
  protected responded = false; // a response head (the upstream's or ours) went to the client
  protected continued = false; // we sent `100 Continue`
  protected closeAfter = false; // close the client connection once this exchange is over
  protected requestSent = false; // the whole request is on `conn`
  protected upBlocked = false; // conn's write buffer is full: client paused
  protected clientBlocked = false; // client's write buffer is full: conn paused
  protected clientEnded = false;

  private readonly parser = new RequestHeadParser(REQUEST_LIMITS);
  // A caller may not claim an identity in a trailer either (some frameworks merge them into headers).
  private readonly reqBody = new BodyFramer({ forbiddenTrailer: (name) => IDENTITY_HEADERS.matches(name) });

  constructor(protected readonly client: net.Socket) {
    client.setNoDelay(true);
    client.setTimeout(CLIENT_IDLE_MS);
    client.on('data', this.onClientData);
    client.on('end', this.onClientEnd);
    client.on('timeout', this.onClientTimeout);
    client.on('error', this.onClientError);
    client.on('close', this.onClientClose);
  }

  // The sides' hooks this layer calls (their contracts are on Http1Session, connection-loop.ts).
  protected abstract onRequest(head: RequestHead): void;
  protected abstract onBodyBuffered(): void;
  protected abstract onAbort(): void;
  protected abstract onClosed(): void;
  // The exchange's moves, made by Http1Session.
  protected abstract respond(status: number, reason: string, message: string, extraName?: string | null, extraValue?: string): void;
  protected abstract detach(): void;
  protected abstract finishExchange(reusable: boolean): void;
  abstract teardown(): void;

  private readonly onClientData = (chunk: Buffer): void => {
    if (this.closed) return;
    if (this.consuming || this.reqState === Req.Done) {
      this.addStash(chunk, 0);
      this.client.pause();
      return;
    }
    this.consume(chunk, 0);
  };

  protected consume(chunk: Buffer, start: number): void {
    this.consuming = true;
    const len = chunk.length;
    let off = start;
    while (off < len && !this.closed) {
      if (this.reqState === Req.Head) {
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
      } else if (this.reqState === Req.Body) {
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
    this.resState = Res.None;
    this.bodyBuf = null;
    this.reqBodyBytes = 0;
    this.sink = Sink.Hold;
    this.reqBody.start(head.body, head.contentLength);
    this.reqState = head.body === 'none' ? Req.Done : Req.Body;
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
      case Sink.Up: {
        const c = this.conn;
        if (c !== null) {
          if (!c.socket.write(buf)) this.upBlocked = true;
          return;
        }
        // Between connections (a side re-attaching): hold.
        this.held.push(buf);
        this.heldBytes += buf.length;
        this.sink = Sink.Hold;
        return;
      }
      case Sink.Hold:
      case Sink.Buffer:
        this.held.push(buf);
        this.heldBytes += buf.length;
        return;
      default:
        return; // Sink.Discard
    }
  }

  private requestBodyDone(): void {
    this.reqState = Req.Done;
    if (this.sink === Sink.Up) {
      this.requestSent = true;
    } else if (this.sink === Sink.Buffer) {
      this.bodyBuf = this.held.length === 1 ? (this.held[0] as Buffer) : Buffer.concat(this.held, this.heldBytes);
      this.held.length = 0;
      this.heldBytes = 0;
      this.sink = Sink.Hold;
      this.onBodyBuffered();
      return;
    }
    // Answered by us while the body was still coming: the body is now drained, next request.
    if (this.resState === Res.Done) this.finishExchange(false);
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
  protected syncClient(): void {
    if (this.closed) return;
    const flow = this.reqState === Req.Head || (this.reqState === Req.Body && this.sink !== Sink.Hold && !this.upBlocked);
    const paused = this.client.isPaused();
    if (flow) {
      if (paused) this.client.resume();
    } else if (!paused) {
      this.client.pause();
    }
  }

  private readonly onClientEnd = (): void => {
    this.clientEnded = true;
    if (this.closed) return;
    if (!this.inExchange) {
      if (this.partial) this.teardown();
      else this.endClient();
    } else if (this.reqState === Req.Body) {
      // The body was cut short.
      this.teardown();
    }
    // Req.Done: answer this request, then close (finishExchange sees clientEnded).
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
    if (this.reqState === Req.Body && this.sink !== Sink.Hold && !this.upBlocked) {
      this.closeAfter = true;
      if (this.conn !== null) this.detach();
      this.onAbort();
      this.respond(408, 'REQUEST_TIMEOUT', 'the request body did not arrive in time');
      return;
    }
    if (this.resState === Res.Body) {
      // The upstream sent a head, then nothing for the whole idle time. The side's timers stop at
      // the head, so without this the client, the upstream connection and whatever is behind it
      // would be held for good. Cutting is the only way to tell the client its body is incomplete.
      this.teardown();
      return;
    }
    // Waiting on the upstream for a head: the side's own timers apply.
  };

  private readonly onClientError = (): void => {
    this.teardown();
  };

  private readonly onClientClose = (): void => {
    this.teardown();
    this.onClosed();
  };

  protected endClient(): void {
    this.closed = true;
    this.client.end();
    // Keep reading (and dropping) so the peer's FIN is seen and the socket closes.
    this.client.resume();
  }
}
