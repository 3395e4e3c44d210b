// The second layer of the HTTP/1.1 connection loop (connection-loop.ts; the layers are explained
// in request-reader.ts): the response to the request in flight, read off its upstream connection
// and forwarded to the client. The head is parsed and forwarded as received when it needs no edit
// (else rewritten without hop-by-hop fields), then the body as the bytes that came in, until its
// framing ends it; the connection is then reusable unless anything says otherwise.
//
// Flow control this way: a client write that leaves writableNeedDrain pauses the upstream
// connection until the client's 'drain'.
import type net from 'node:net';
import { HEAD_ERROR, NEED_MORE, type RequestHead, type ResponseHead } from '../../http/head-parser.js';
import { serializeResponseHead } from '../../http/head-writer.js';
import { STREAM_REFUSED } from '../mux/channel.js';
import { BODY_ERROR, BODY_NEED_MORE } from './body-framer.js';
import { hasHopByHop, keepAliveTimeout, stripForForward } from './forward-headers.js';
import { MergeLimit, Req, Res } from './loop-states.js';
import { RequestReader } from './request-reader.js';
import type { ConnOwner, UpstreamConn } from './upstream-conn.js';

export abstract class ResponseForwarder extends RequestReader implements ConnOwner {
  protected resSeen = false; // a byte of response arrived on `conn` for this request
  protected resPartial = false; // the response head spans chunks (so it is not forwarded raw)
  private resKeepAlive = false;

  constructor(client: net.Socket) {
    super(client);
    client.on('drain', this.onClientDrain);
  }

  // The sides' hooks this layer calls (their contracts are on Http1Session, connection-loop.ts).
  protected abstract onResponse(rh: ResponseHead): boolean;
  protected abstract onUpstreamFailure(err: NodeJS.ErrnoException | null, stale: boolean, connected: boolean): void;

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
      if (this.resState === Res.Head) {
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
        if (this.reqState !== Req.Done) this.closeAfter = true;
        conn.body.start(rh.body, rh.contentLength);
        this.resState = rh.body === 'none' ? Res.Done : Res.Body;
        headStr = this.responseHead(conn, rh, chunk, start);
        if (headStr === null) rawFrom = start;
        this.resPartial = false;
        if (this.resState === Res.Done) {
          finished = true;
          extra = off < len;
          break;
        }
      } else if (this.resState === Res.Body) {
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
    if (n <= MergeLimit.Bytes) {
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
    this.resState = Res.Done;
    const conn = this.conn;
    // Bytes after the end of the response answer nothing we asked: that connection is not reused.
    const reusable = conn !== null && !extra && this.resKeepAlive && this.requestSent && !conn.dead;
    this.finishExchange(reusable);
  }

  private readonly onClientDrain = (): void => {
    if (!this.clientBlocked) return;
    this.clientBlocked = false;
    if (this.conn !== null) this.conn.socket.resume();
  };

  upDrain(conn: UpstreamConn): void {
    if (conn !== this.conn || !this.upBlocked) return;
    this.upBlocked = false;
    this.syncClient();
  }

  upClosed(conn: UpstreamConn, err: NodeJS.ErrnoException | null): void {
    if (conn !== this.conn) return;
    this.conn = null;
    const st = this.resState;
    this.resState = Res.None;
    this.upBlocked = false;
    if (st === Res.Head) {
      // Stale: a reused connection that died showing no byte of a response, or a stream the other
      // agent refused at open: either way nothing was processed.
      this.onUpstreamFailure(err, !this.resSeen && (conn.served > 0 || err?.code === STREAM_REFUSED), conn.connected);
    } else if (st === Res.Body) {
      if (conn.body.kind === 'until-close' && err === null) {
        // The close is the end of this body (and so of the client connection too).
        this.resState = Res.Done;
        this.closeAfter = true;
        this.finishExchange(false);
      } else {
        // Cut short: closing is the only way to tell the client its body is incomplete.
        this.teardown();
      }
    }
  }
}
