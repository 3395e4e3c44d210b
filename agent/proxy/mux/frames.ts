// The framing of tcp connections multiplexed over one mTLS connection between two agents
// (ALPN "hostmesh-mux/1"). Each frame: type (1 byte), stream id (4), payload length (4), payload.
//
// Why multiplex: carried one-to-one, every tcp connection through the mesh is its own TLS session
// on both agents, and every message is its own TLS record and send() on each side. Carried as
// streams of one session, the frames of all connections that became readable in the same event-loop
// turn leave in one record and one send(), and the receiving agent decrypts them with one read.
// The saving grows with the number of connections, which is where per-connection proxying fell
// furthest behind (see scripts/bench).

export const MUX_ALPN = 'hostmesh-mux/1';

export const enum FrameType {
  /** Client → server: a new tcp connection, to the service the session's SNI named. No payload. */
  Open = 1,
  /** Bytes of a stream, in order. */
  Data = 2,
  /** The sender will send no more bytes on this stream (tcp half-close). No payload. */
  Fin = 3,
  /** The stream is aborted; payload: a short ASCII reason code. */
  Reset = 4,
  /** Flow control: payload u32, bytes the receiver has passed on and the sender may send again. */
  Window = 5,
  /** No new streams on this session (stream 0); the ones open carry on. */
  GoAway = 6,
  /**
   * Server → client: the stream was taken (no payload). Until then the calling side keeps what it
   * sent on a tcp stream, so that a stream refused at open (GOING_AWAY…) is carried elsewhere.
   */
  Accepted = 7,
}

/** Reset reasons meaning "refused at open, nothing was processed": the stream may go elsewhere. */
export const REFUSALS: ReadonlySet<string> = new Set(['GOING_AWAY', 'TOO_MANY_STREAMS', 'NOT_ACCEPTED', 'UNKNOWN_SERVICE']);

export const HEADER_BYTES = 9;
/** Largest payload of one frame; a socket read is never larger, a larger write is split. */
export const MAX_PAYLOAD = 64 * 1024;
/**
 * Bytes a sender may have unacknowledged on one stream. Large enough that a bulk transfer is not
 * held back by the round trip on loopback or a LAN, small enough that a slow reader of one stream
 * cannot make the receiving agent buffer much for it.
 */
export const STREAM_WINDOW = 256 * 1024;

/** Credit is returned once this much was passed on, not per frame: request/response traffic rarely needs a Window frame. */
export const CREDIT_AFTER = STREAM_WINDOW / 2;

/**
 * The receiving side of one stream's window: what the peer sent and we have not credited back.
 * Both kinds of stream end (socket-bound and channel) keep one.
 */
export class ReceiveWindow {
  private outstanding = 0;

  constructor(private readonly stream: number) {}

  /** `n` payload bytes arrived; a peer that sends past its window is a protocol error. */
  received(n: number): void {
    this.outstanding += n;
    if (this.outstanding > STREAM_WINDOW + MAX_PAYLOAD) throw new MuxProtocolError(`stream ${this.stream} sent past its window`);
  }

  /** The Window frame that gives `n` passed-on bytes back to the peer. */
  credit(n: number): Buffer {
    this.outstanding -= n;
    return windowFrame(this.stream, n);
  }
}

export function header(type: FrameType, stream: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h[0] = type;
  h.writeUInt32BE(stream, 1);
  h.writeUInt32BE(length, 5);
  return h;
}

export function windowFrame(stream: number, increment: number): Buffer {
  const f = Buffer.allocUnsafe(HEADER_BYTES + 4);
  f[0] = FrameType.Window;
  f.writeUInt32BE(stream, 1);
  f.writeUInt32BE(4, 5);
  f.writeUInt32BE(increment, 9);
  return f;
}

export function resetFrame(stream: number, reason: string): Buffer {
  const r = Buffer.from(reason.slice(0, 64), 'latin1');
  return Buffer.concat([header(FrameType.Reset, stream, r.length), r]);
}

/**
 * A payload that is going to be held (queued, or buffered by a socket) is copied when it is a
 * small view of a larger read: otherwise a peer could pin a whole TLS record's buffer with each
 * one-byte frame, and the window, which counts payload bytes, would not bound the memory.
 */
export function keepable(payload: Buffer): Buffer {
  return payload.length * 4 < payload.buffer.byteLength ? Buffer.from(payload) : payload;
}

export class MuxProtocolError extends Error {
  override name = 'MuxProtocolError';
  readonly code = 'HM_ERR_MUX_PROTOCOL';
}

export type FrameHandler = (type: number, stream: number, payload: Buffer) => void;

/**
 * Cuts a byte stream into frames. Payloads are views of the chunk they arrived in (no copy) unless
 * a frame spans two chunks. Throws MuxProtocolError on a frame no peer of ours would send.
 */
export class FrameReader {
  /** Bytes of an incomplete frame, kept as they came until `need` bytes are there (one copy per frame, however it was cut). */
  private parts: Buffer[] = [];
  private partBytes = 0;
  private need = 0;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.parts.length > 0) {
      this.parts.push(chunk);
      this.partBytes += chunk.length;
      if (this.partBytes < this.need) return;
      buf = Buffer.concat(this.parts, this.partBytes);
      this.parts = [];
      this.partBytes = 0;
    }
    let at = 0;
    const end = buf.length;
    while (end - at >= HEADER_BYTES) {
      const type = buf[at]!;
      const length = buf.readUInt32BE(at + 5);
      if (type < FrameType.Open || type > FrameType.Accepted) throw new MuxProtocolError(`unknown frame type ${type}`);
      if (length > MAX_PAYLOAD) throw new MuxProtocolError(`frame of ${length} bytes is over the ${MAX_PAYLOAD}-byte limit`);
      if (end - at - HEADER_BYTES < length) break;
      const stream = buf.readUInt32BE(at + 1);
      const start = at + HEADER_BYTES;
      at = start + length;
      this.onFrame(type, stream, buf.subarray(start, at));
    }
    if (at < end) {
      const rest = at === 0 ? buf : buf.subarray(at);
      this.parts.push(rest);
      this.partBytes = rest.length;
      this.need = rest.length >= HEADER_BYTES ? HEADER_BYTES + rest.readUInt32BE(5) : HEADER_BYTES;
    }
  }
}
