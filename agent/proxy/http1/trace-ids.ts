// W3C trace-context ids. Random bytes are drawn 4 KiB at a time into one buffer and hex-encoded
// straight from it: one crypto call per ~170 requests instead of one or two per request.
import { randomFillSync } from 'node:crypto';

const POOL = Buffer.allocUnsafe(4096);
let next = POOL.length;

/** `n` random bytes as hex, never all zero (an all-zero id is invalid, W3C trace-context §3.2.2.3). */
function randomHex(n: number): string {
  if (next + n > POOL.length) {
    randomFillSync(POOL);
    next = 0;
  }
  const at = next;
  next += n;
  let any = 0;
  for (let i = at; i < at + n; i++) any |= POOL[i] as number;
  // At 2^-64 odds (or less), force one bit.
  if (any === 0) POOL[at + n - 1] = 1;
  return POOL.toString('hex', at, at + n);
}

/** A 32-hex trace id. */
export function newTraceId(): string {
  return randomHex(16);
}

/** A 16-hex span (parent) id. */
export function newSpanId(): string {
  return randomHex(8);
}

/** `00-<32 hex trace id>-<16 hex parent id>-01`. */
export function newTraceparent(): string {
  return '00-' + randomHex(16) + '-' + randomHex(8) + '-01';
}
