// Parsing and writing W3C `traceparent` (trace-context level 1): version-traceid-parentid-flags.
// A value that does not parse is treated as absent, so the hop starts a new trace (§4.3); the
// version we write is always 00.

export interface TraceParent {
  traceId: string;
  parentId: string;
  sampled: boolean;
}

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The fields of a traceparent value, or null if it is not a valid one. */
export function parseTraceparent(v: string): TraceParent | null {
  // 00 has exactly 55 characters; a later version may append fields after a '-'.
  if (v.length < 55 || v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return null;
  const version = v.slice(0, 2);
  if (version === 'ff' || !HEX.test(version)) return null;
  if (version === '00' ? v.length !== 55 : v.length > 55 && v[55] !== '-') return null;
  const traceId = v.slice(3, 35);
  const parentId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentId) || !HEX.test(flags)) return null;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return null;
  return { traceId, parentId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/** The trace id of a header value, or '' (for access logs, which never fail on a bad value). */
export function traceIdOf(v: string | undefined): string {
  return v === undefined ? '' : (parseTraceparent(v)?.traceId ?? '');
}
