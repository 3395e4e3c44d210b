// Where a message body ends, whatever its framing, so the proxy can forward body bytes verbatim
// and know where the next message on a kept-alive connection starts. Nothing is decoded or copied:
// Content-Length bodies are counted, chunked ones walked by ChunkedTracker (only the size lines and
// trailers are looked at), and 'until-close' bodies end when the sender closes.
//
//   framer.start(head.body, head.contentLength);
//   const e = framer.feed(chunk, off);
//   BODY_NEED_MORE → chunk[off..] is all body; feed the next chunk
//   BODY_ERROR     → the chunked framing is broken (framer.chunked.error says how); close
//   otherwise      → the body ends at chunk[e]; what follows belongs to the next message
import type { BodyKind } from '../../http/head.js';
import { CHUNKED_ERROR, ChunkedTracker, type ChunkedLimits } from '../../http/chunked.js';

export const BODY_NEED_MORE = -1;
export const BODY_ERROR = -2;

export class BodyFramer {
  kind: BodyKind = 'none';
  /** Bytes still expected of a Content-Length body. */
  remaining = 0;
  readonly chunked: ChunkedTracker;

  constructor(limits?: ChunkedLimits) {
    this.chunked = new ChunkedTracker(limits);
  }

  start(kind: BodyKind, contentLength: number): void {
    this.kind = kind;
    this.remaining = kind === 'length' ? contentLength : 0;
    if (kind === 'chunked') this.chunked.reset();
  }

  feed(chunk: Buffer, off: number): number {
    switch (this.kind) {
      case 'length': {
        const avail = chunk.length - off;
        if (avail < this.remaining) {
          this.remaining -= avail;
          return BODY_NEED_MORE;
        }
        const end = off + this.remaining;
        this.remaining = 0;
        return end;
      }
      case 'chunked': {
        const r = this.chunked.execute(chunk, off);
        return r === CHUNKED_ERROR ? BODY_ERROR : r; // CHUNKED_NEED_MORE === BODY_NEED_MORE
      }
      case 'until-close':
        return BODY_NEED_MORE;
      default:
        return off;
    }
  }
}
