// The shapes the head parser produces and the codes it refuses with; see head-parser.ts.

export const DEFAULT_MAX_HEAD_SIZE = 32 * 1024;
export const DEFAULT_MAX_HEADERS = 100;

export type HeadErrorCode =
  | 'HEAD_TOO_LARGE'
  | 'TOO_MANY_HEADERS'
  | 'BAD_REQUEST_LINE'
  | 'BAD_STATUS_LINE'
  | 'BAD_HEADER'
  | 'OBS_FOLD'
  | 'BARE_LF'
  | 'CL_AND_TE'
  | 'BAD_CONTENT_LENGTH'
  | 'DUPLICATE_CONTENT_LENGTH'
  | 'BAD_TRANSFER_ENCODING'
  | 'BAD_VERSION'
  | 'BAD_HOST';

/**
 * The status the proxy answers a refused *request* head with. A refused response head is the
 * upstream's fault: the proxy answers 502 whatever the code.
 */
export const HEAD_ERROR_STATUS: Readonly<Record<HeadErrorCode, number>> = {
  HEAD_TOO_LARGE: 431,
  TOO_MANY_HEADERS: 431,
  BAD_REQUEST_LINE: 400,
  BAD_STATUS_LINE: 502,
  BAD_HEADER: 400,
  OBS_FOLD: 400,
  BARE_LF: 400,
  CL_AND_TE: 400,
  BAD_CONTENT_LENGTH: 400,
  DUPLICATE_CONTENT_LENGTH: 400,
  BAD_TRANSFER_ENCODING: 501, // RFC 9112 §6.1: a coding the server does not understand → 501
  BAD_VERSION: 505,
  BAD_HOST: 400,
};

/**
 * How the body is delimited. 'length': exactly `contentLength` bytes follow (> 0); 'chunked': feed
 * a ChunkedTracker; 'until-close' (responses only): the body ends when the upstream closes.
 */
export type BodyKind = 'none' | 'length' | 'chunked' | 'until-close';

export interface HeadLimits {
  /** Bytes of the whole head, start line to the final CRLF included. Default 32 KiB. */
  maxHeadSize?: number;
  /** Field lines. Default 100. */
  maxHeaders?: number;
}

export interface MessageHead {
  version: '1.0' | '1.1';
  /**
   * Flat [name, value, name, value, …]: names lower-cased, values with OWS trimmed, in wire order.
   * A flat array is the cheapest structure to build, scan and rewrite in place; the writer emits
   * names lower-case (as Envoy does by default on HTTP/1.1). A repeated identical Content-Length is
   * kept once, and a list value (`5, 5`) is stored as its single number, so what is forwarded has
   * one unambiguous length.
   */
  headers: string[];
  body: BodyKind;
  /** The Content-Length, or -1 when absent (also for chunked bodies, which never have one). */
  contentLength: number;
  /** Whether the connection may carry another message after this one. */
  keepAlive: boolean;
  /** The Upgrade value when the peer asks for (request) or agrees to (101 response) a protocol switch. */
  upgrade: string | null;
  /** Bytes taken from the stream for this head, leading empty lines included. */
  headSize: number;
}

export interface RequestHead extends MessageHead {
  method: string;
  /** The raw request-target, as received; normalize it with agent/policy/normalize-path.ts. */
  target: string;
  /** The Host value (validated), or null for an HTTP/1.0 request without one. */
  host: string | null;
  /** `Expect: 100-continue` on an HTTP/1.1 request. */
  expectContinue: boolean;
}

export interface ResponseHead extends MessageHead {
  status: number;
  reason: string;
  /** 1xx other than 101: the final response to the same request follows. */
  interim: boolean;
  /** 101, or 2xx to CONNECT: from here the connection carries opaque bytes both ways. */
  tunnel: boolean;
}
