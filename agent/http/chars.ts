// Byte classes and small scanners shared by the head parser, the chunked tracker and the writer.
//
// Heads are decoded once as latin1 (one JS char per byte, so every byte survives a round trip and
// every char code is < 256). Each check below is a loop of charCodeAt + table lookup: V8 compiles it
// to a tight machine loop with no allocation, which is what llhttp and picohttpparser do in C. A
// regex per field would pay the regex engine's entry cost on every header for no gain.

function table(chars: string, ranges: Array<[number, number]> = []): Uint8Array {
  const t = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (const [lo, hi] of ranges) for (let c = lo; c <= hi; c++) t[c] = 1;
  return t;
}

const ALNUM: Array<[number, number]> = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x61, 0x7a],
];

/** tchar (RFC 9110 §5.6.2): what a method and a field name are made of. */
export const TCHAR = table("!#$%&'*+-.^_`|~", ALNUM);

/** What a Host value or an absolute-form authority may hold: reg-name, IP literal, port, pct-encoding. */
export const HOST_CHAR = table("-._~!$&'()*+,;=:[]%", ALNUM);

/** Hex digit values; -1 for anything else. */
export const HEX = new Int8Array(256).fill(-1);
for (let c = 0x30; c <= 0x39; c++) HEX[c] = c - 0x30;
for (let c = 0x41; c <= 0x46; c++) HEX[c] = c - 0x41 + 10;
for (let c = 0x61; c <= 0x66; c++) HEX[c] = c - 0x61 + 10;

/** True when s[start, end) is a non-empty run of tchar. */
export function isToken(s: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) if (TCHAR[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/**
 * True when s[start, end) is a legal field value (or reason phrase): HTAB, SP, VCHAR and obs-text.
 * Refuses NUL, CR, LF and every other control (RFC 9110 §5.5 lets a recipient reject them; we do,
 * because a CR or NUL that reaches a lenient upstream is a response-splitting or truncation tool).
 */
export function isFieldValue(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return false;
  }
  return true;
}

/** True when s[start, end) is non-empty and only HOST_CHAR. */
export function isHostValue(s: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let i = start; i < end; i++) if (HOST_CHAR[s.charCodeAt(i)] !== 1) return false;
  return true;
}

/** ASCII case-insensitive compare of s[start, end) with a lower-case literal, without allocating. */
export function eqLower(s: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    let c = s.charCodeAt(start + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Connection tokens that change how a message is handled (bit flags). */
export const CONN_CLOSE = 1;
export const CONN_KEEP_ALIVE = 2;
export const CONN_UPGRADE = 4;
/** Some other token: a header nominated as hop-by-hop. */
export const CONN_OTHER = 8;

/**
 * Flags for the comma-separated tokens of a Connection value. Walks the value in place (no split,
 * no lower-casing copy): this runs on nearly every request, since most clients send one.
 */
export function connectionFlags(v: string): number {
  let flags = 0;
  let i = 0;
  const len = v.length;
  while (i < len) {
    let e = v.indexOf(',', i);
    if (e === -1) e = len;
    let s = i;
    let t = e;
    while (s < t && (v.charCodeAt(s) === 0x20 || v.charCodeAt(s) === 0x09)) s++;
    while (t > s && (v.charCodeAt(t - 1) === 0x20 || v.charCodeAt(t - 1) === 0x09)) t--;
    if (t > s) {
      if (eqLower(v, s, t, 'keep-alive')) flags |= CONN_KEEP_ALIVE;
      else if (eqLower(v, s, t, 'close')) flags |= CONN_CLOSE;
      else if (eqLower(v, s, t, 'upgrade')) flags |= CONN_UPGRADE;
      else flags |= CONN_OTHER;
    }
    i = e + 1;
  }
  return flags;
}

/** Appends the lower-cased items of the comma-separated list v to out (allocates only for those). */
export function listTokens(v: string, out: string[]): void {
  let i = 0;
  const len = v.length;
  while (i < len) {
    let e = v.indexOf(',', i);
    if (e === -1) e = len;
    let s = i;
    let t = e;
    while (s < t && (v.charCodeAt(s) === 0x20 || v.charCodeAt(s) === 0x09)) s++;
    while (t > s && (v.charCodeAt(t - 1) === 0x20 || v.charCodeAt(t - 1) === 0x09)) t--;
    if (t > s) out.push(v.slice(s, t).toLowerCase());
    i = e + 1;
  }
}

/** True when the comma-separated list v holds `lower` (case-insensitive), e.g. `te: trailers, deflate`. */
export function hasListToken(v: string, lower: string): boolean {
  let i = 0;
  const len = v.length;
  while (i < len) {
    let e = v.indexOf(',', i);
    if (e === -1) e = len;
    let s = i;
    let t = e;
    while (s < t && (v.charCodeAt(s) === 0x20 || v.charCodeAt(s) === 0x09)) s++;
    while (t > s && (v.charCodeAt(t - 1) === 0x20 || v.charCodeAt(t - 1) === 0x09)) t--;
    // A TE element may carry parameters (`trailers;q=1` is not legal, but `gzip;q=0.5` is): compare
    // only the part before ';'.
    const semi = v.indexOf(';', s);
    if (semi !== -1 && semi < t) {
      t = semi;
      while (t > s && (v.charCodeAt(t - 1) === 0x20 || v.charCodeAt(t - 1) === 0x09)) t--;
    }
    if (eqLower(v, s, t, lower)) return true;
    i = e + 1;
  }
  return false;
}
