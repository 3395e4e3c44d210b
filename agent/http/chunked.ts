// Finds where a chunked body ends, so the proxy can forward it verbatim and know where the next
// message on the connection starts. It never decodes or copies: data bytes are skipped by
// arithmetic, and only the few bytes of chunk-size lines and trailers are looked at.
//
// Usage: const t = new ChunkedTracker(); then for each piece of body bytes
//   const end = t.execute(chunk, offset);
//   NEED_MORE     → everything from offset belongs to the body; forward it and feed the next chunk
//   CHUNKED_ERROR → t.error says why; the stream is unusable, close it
//   otherwise     → the body ends at chunk[end]; what follows is the next message. The tracker has
//                   reset itself for the next body.
//
// Strictness (RFC 9112 §7.1), because the upstream must see the same boundaries we do:
// - chunk-size is 1..16 hex digits whose value fits in a double exactly; nothing else before the
//   extension or CRLF except BWS (SP/HTAB) that must be followed by `;`.
// - chunk-ext is free text up to CRLF with no controls but HTAB, at most maxExtLength bytes per line
//   (the CVE-2024-22019 class: unbounded extensions cost CPU and memory for no data).
// - after each chunk's data comes exactly CRLF; lines end in CRLF only (bare LF or CR refused).
// - trailer fields are `token ":" value` lines, no obs-fold, bounded in bytes and count.
//
// The size lines and trailers are parsed one byte at a time with a switch: they are a handful of
// bytes per chunk, so a state machine is as fast as indexOf there and survives any split.
import { HEX, TCHAR } from './chars.js';

export const CHUNKED_NEED_MORE = -1;
export const CHUNKED_ERROR = -2;

export type ChunkedErrorCode =
  | 'BAD_CHUNK_SIZE'
  | 'BAD_CHUNK_EXT'
  | 'CHUNK_EXT_TOO_LONG'
  | 'BAD_CHUNK_DATA'
  | 'BAD_TRAILER'
  | 'TRAILERS_TOO_LARGE'
  | 'FORBIDDEN_TRAILER';

export interface ChunkedLimits {
  /** Bytes of chunk-ext on one size line (after the digits, before CRLF). Default 1024. */
  maxExtLength?: number;
  /** Bytes of the trailer section, final CRLF included. Default 8 KiB. */
  maxTrailerSize?: number;
  /** Trailer fields. Default 32. */
  maxTrailers?: number;
  /**
   * Trailer field names (lower-case) refused with FORBIDDEN_TRAILER, e.g. identity headers: some
   * frameworks merge trailers into the headers, where a forged one would be taken as ours.
   */
  forbiddenTrailer?: (name: string) => boolean;
}

const S_SIZE = 0; // reading hex digits (at least one needed)
const S_SIZE_BWS = 1; // SP/HTAB after the digits: only more BWS or ';' may follow
const S_EXT = 2; // inside chunk-ext, up to CR
const S_SIZE_LF = 3; // CR of the size line seen
const S_DATA = 4; // skipping data bytes
const S_DATA_CR = 5; // CRLF after data
const S_DATA_LF = 6;
const S_TRAILER = 7; // at the start of a trailer line (or the final CRLF)
const S_TRAILER_NAME = 8;
const S_TRAILER_VALUE = 9;
const S_TRAILER_LF = 10; // CR of a trailer line seen
const S_END_LF = 11; // CR of the final empty line seen

const MAX_SIZE_DIGITS = 16;

/** ASCII letters to lower case, other bytes as they are. */
const lower = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);

export class ChunkedTracker {
  readonly maxExtLength: number;
  readonly maxTrailerSize: number;
  readonly maxTrailers: number;
  readonly #forbidden: ((name: string) => boolean) | null;
  error: ChunkedErrorCode | null = null;
  /** Data bytes of the current body so far (framing excluded), for limits and metrics. */
  dataBytes = 0;
  /** Whether the body that just ended (or is ending) carries trailer fields. */
  trailers = false;

  #state = S_SIZE;
  #size = 0;
  #digits = 0;
  #ext = 0;
  #remaining = 0;
  #trailerBytes = 0;
  #trailerCount = 0;
  #trailerName = ''; // the trailer field name being read (only with forbiddenTrailer; trailers are rare)
  #done = false; // a body just ended; the next execute() starts a new one

  constructor(limits: ChunkedLimits = {}) {
    this.maxExtLength = limits.maxExtLength ?? 1024;
    this.maxTrailerSize = limits.maxTrailerSize ?? 8 * 1024;
    this.maxTrailers = limits.maxTrailers ?? 32;
    this.#forbidden = limits.forbiddenTrailer ?? null;
  }

  /** Start a new body (after an error too). */
  reset(): void {
    this.error = null;
    this.dataBytes = 0;
    this.trailers = false;
    this.#state = S_SIZE;
    this.#size = 0;
    this.#digits = 0;
    this.#ext = 0;
    this.#remaining = 0;
    this.#trailerBytes = 0;
    this.#trailerCount = 0;
    this.#done = false;
  }

  /** Feed chunk[offset..]; see the file comment for the return value. */
  execute(chunk: Buffer, offset = 0): number {
    if (this.error !== null) return CHUNKED_ERROR;
    if (this.#done) {
      this.#done = false;
      this.dataBytes = 0;
      this.trailers = false;
    }
    const len = chunk.length;
    let pos = offset;
    while (pos < len) {
      if (this.#state === S_DATA) {
        // The hot case: skip data without touching it.
        const avail = len - pos;
        if (avail < this.#remaining) {
          this.#remaining -= avail;
          this.dataBytes += avail;
          return CHUNKED_NEED_MORE;
        }
        pos += this.#remaining;
        this.dataBytes += this.#remaining;
        this.#remaining = 0;
        this.#state = S_DATA_CR;
        continue;
      }
      const c = chunk[pos++] as number;
      switch (this.#state) {
        case S_SIZE: {
          const h = HEX[c] as number;
          if (h >= 0) {
            if (++this.#digits > MAX_SIZE_DIGITS) return this.#fail('BAD_CHUNK_SIZE');
            this.#size = this.#size * 16 + h;
            if (this.#size > Number.MAX_SAFE_INTEGER) return this.#fail('BAD_CHUNK_SIZE');
          } else if (this.#digits === 0) {
            return this.#fail('BAD_CHUNK_SIZE');
          } else if (c === 0x0d) {
            this.#state = S_SIZE_LF;
          } else if (c === 0x3b) {
            this.#ext = 1;
            this.#state = S_EXT;
          } else if (c === 0x20 || c === 0x09) {
            this.#ext = 1;
            this.#state = S_SIZE_BWS;
          } else {
            return this.#fail('BAD_CHUNK_SIZE');
          }
          break;
        }
        case S_SIZE_BWS:
          if (++this.#ext > this.maxExtLength) return this.#fail('CHUNK_EXT_TOO_LONG');
          if (c === 0x3b) this.#state = S_EXT;
          else if (c !== 0x20 && c !== 0x09) return this.#fail('BAD_CHUNK_EXT');
          break;
        case S_EXT:
          if (c === 0x0d) {
            this.#state = S_SIZE_LF;
          } else {
            if (++this.#ext > this.maxExtLength) return this.#fail('CHUNK_EXT_TOO_LONG');
            if ((c < 0x20 && c !== 0x09) || c === 0x7f) return this.#fail('BAD_CHUNK_EXT');
          }
          break;
        case S_SIZE_LF:
          if (c !== 0x0a) return this.#fail('BAD_CHUNK_SIZE');
          if (this.#size === 0) {
            this.#state = S_TRAILER;
          } else {
            this.#remaining = this.#size;
            this.#state = S_DATA;
          }
          this.#size = 0;
          this.#digits = 0;
          this.#ext = 0;
          break;
        case S_DATA_CR:
          if (c !== 0x0d) return this.#fail('BAD_CHUNK_DATA');
          this.#state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (c !== 0x0a) return this.#fail('BAD_CHUNK_DATA');
          this.#state = S_SIZE;
          break;
        case S_TRAILER:
          if (++this.#trailerBytes > this.maxTrailerSize) return this.#fail('TRAILERS_TOO_LARGE');
          if (c === 0x0d) {
            this.#state = S_END_LF;
          } else if (TCHAR[c] === 1) {
            // Not SP/HTAB (obs-fold) and not ':' (empty name): both fail here.
            if (++this.#trailerCount > this.maxTrailers) return this.#fail('TRAILERS_TOO_LARGE');
            this.trailers = true;
            this.#trailerName = this.#forbidden === null ? '' : String.fromCharCode(lower(c));
            this.#state = S_TRAILER_NAME;
          } else {
            return this.#fail('BAD_TRAILER');
          }
          break;
        case S_TRAILER_NAME:
          if (++this.#trailerBytes > this.maxTrailerSize) return this.#fail('TRAILERS_TOO_LARGE');
          if (c === 0x3a) {
            if (this.#forbidden !== null && this.#forbidden(this.#trailerName)) return this.#fail('FORBIDDEN_TRAILER');
            this.#state = S_TRAILER_VALUE;
          } else if (TCHAR[c] !== 1) return this.#fail('BAD_TRAILER');
          else if (this.#forbidden !== null) this.#trailerName += String.fromCharCode(lower(c));
          break;
        case S_TRAILER_VALUE:
          if (++this.#trailerBytes > this.maxTrailerSize) return this.#fail('TRAILERS_TOO_LARGE');
          if (c === 0x0d) this.#state = S_TRAILER_LF;
          else if ((c < 0x20 && c !== 0x09) || c === 0x7f) return this.#fail('BAD_TRAILER');
          break;
        case S_TRAILER_LF:
          if (++this.#trailerBytes > this.maxTrailerSize) return this.#fail('TRAILERS_TOO_LARGE');
          if (c !== 0x0a) return this.#fail('BAD_TRAILER');
          this.#state = S_TRAILER;
          break;
        case S_END_LF:
          if (c !== 0x0a) return this.#fail('BAD_TRAILER');
          // Done: ready for the next body; dataBytes and trailers stay readable until it is fed.
          this.#state = S_SIZE;
          this.#trailerBytes = 0;
          this.#trailerCount = 0;
          this.#done = true;
          return pos;
      }
    }
    return CHUNKED_NEED_MORE;
  }

  #fail(code: ChunkedErrorCode): number {
    this.error = code;
    return CHUNKED_ERROR;
  }
}
