// The states of one exchange in the HTTP/1.1 connection loop (connection-loop.ts), shared by its
// three layers, and the loop's limits.
//
// The states are const enums because every layer's module reads them on the hot path: tsc and
// esbuild write each use as a literal. Imported `const`s would be read through the module binding
// at each use, which V8 does not fold as it does a module's own: a state-machine step measured
// ~20 % slower with them.

/** Request head limits, as the node:http listeners had (16 KiB head). */
export const REQUEST_LIMITS = { maxHeadSize: 16 * 1024, maxHeaders: 100 };
/**
 * Idle time after which a client connection is closed (node's keepAliveTimeout was 30 s). It is a
 * socket inactivity timeout, so it also bounds a client that stalls mid-head or mid-body, or stops
 * reading its response, and an upstream that stalls mid-response-body.
 */
export const CLIENT_IDLE_MS = 30_000;

/** Body bytes up to this size are copied behind a rewritten head to make one write. */
export const enum MergeLimit {
  Bytes = 16 * 1024,
}

/** The request side. */
export const enum Req {
  Head = 0, // reading a head (or idle between requests)
  Body = 1, // reading the request body
  Done = 2, // request complete; client paused until the response is done
}

/** The response side. */
export const enum Res {
  None = 0, // no upstream response expected (not attached yet)
  Head = 1, // waiting for / parsing the response head
  Body = 2, // forwarding the response body
  Done = 3, // response complete (the upstream's or our own)
}

/** Where request body bytes go. */
export const enum Sink {
  Hold = 0, // kept until an upstream connection is attached (the client is paused meanwhile)
  Up = 1, // written to the upstream connection
  Buffer = 2, // kept whole so the request can be retried (small bodies, outbound)
  Discard = 3, // dropped: the request was answered by the proxy itself
}
