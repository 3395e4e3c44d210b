// Normalizes a request-target once, for both the access decision and forwarding: the upstream
// receives exactly the path that was checked, so no reading of the path can differ between the
// policy and the service (the `//admin`, `/x/../admin`, `%2e%2e`, `%2F` family of bypasses).
//
// What is done to the path (the query is split off and left byte for byte as it came):
// - percent-escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded, every other escape
//   is kept with its hex upper-cased (RFC 3986 §6.2.2.1–2);
// - refused: an escape that is not `%` + two hex digits, an encoded `/` (%2F) or `\` (%5C), a raw
//   `\`, NUL (raw or %00), controls, spaces and non-ASCII bytes, `?`/`#` inside a path. Encoded
//   slashes are refused rather than kept because servers disagree on whether they split segments;
//   a raw backslash because some servers treat it as `/`;
// - repeated slashes are merged, then dot segments removed (RFC 3986 §5.2.4), after decoding, so
//   `%2e%2e` is `..`. A trailing slash is kept (`/a/./b/` → `/a/b/`; `/a/b/..` → `/a/`).
// Not done: case folding (paths are case-sensitive), and nothing about `;` path parameters or
// double encoding (`%252e` stays as is): an upstream that decodes twice or strips `;params` can
// still read a path differently, and a policy on such a service must say so in its own patterns.
//
// Target forms (RFC 9112 §3.2): origin-form for every method; absolute-form (`http://h/p`) is
// converted to origin-form and its authority reported so the proxy can set Host from it;
// authority-form only for CONNECT; `*` only for OPTIONS. The last two have no path (null).
//
// Cost: a path with no `%`, `\`, `//` or `/.` is checked in one charCodeAt loop and returned as
// the same string; only others pay for decoding and segment handling.
import { HEX, isHostValue } from '../http/chars.js';

export type PathErrorCode = 'BAD_TARGET' | 'BAD_PERCENT' | 'ENCODED_SLASH' | 'ENCODED_BACKSLASH' | 'BACKSLASH' | 'NUL';

export interface NormalizedTarget {
  /** The normalized path (starts with `/`); null for `*` (OPTIONS) and authority-form (CONNECT). */
  path: string | null;
  /** The query after `?`, verbatim; null when there is no `?`. */
  query: string | null;
  /** The authority of an absolute-form or authority-form target; null for origin-form and `*`. */
  authority: string | null;
}

const UNRESERVED = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1;
const HEX_UPPER = '0123456789ABCDEF';

/** Whether a normalizePath() result is an error code (a path always starts with `/`). */
export function isPathError(r: string): r is PathErrorCode {
  return r.charCodeAt(0) !== 0x2f;
}

/** Normalize a request-target for `method`. Returns the parts, or why the target is refused. */
export function normalizeTarget(method: string, target: string): NormalizedTarget | PathErrorCode {
  if (target.charCodeAt(0) === 0x2f) {
    if (method === 'CONNECT') return 'BAD_TARGET';
    return split(target, 0, null);
  }
  if (method === 'CONNECT') {
    // authority-form = host ":" port
    const colon = target.lastIndexOf(':');
    if (colon <= 0 || colon === target.length - 1 || !isHostValue(target, 0, target.length)) return 'BAD_TARGET';
    return { path: null, query: null, authority: target };
  }
  if (target === '*') return method === 'OPTIONS' ? { path: null, query: null, authority: null } : 'BAD_TARGET';
  // absolute-form: http(s)://authority[/path][?query]; userinfo is refused (`@` is not a host char).
  let s: number;
  if (target.length > 7 && target.slice(0, 7).toLowerCase() === 'http://') s = 7;
  else if (target.length > 8 && target.slice(0, 8).toLowerCase() === 'https://') s = 8;
  else return 'BAD_TARGET';
  let e = s;
  while (e < target.length) {
    const c = target.charCodeAt(e);
    if (c === 0x2f || c === 0x3f) break;
    e++;
  }
  if (!isHostValue(target, s, e)) return 'BAD_TARGET';
  const authority = target.slice(s, e);
  if (e === target.length) return { path: '/', query: null, authority };
  if (target.charCodeAt(e) === 0x3f) {
    const query = checkedQuery(target.slice(e + 1));
    return query === null ? 'BAD_TARGET' : { path: '/', query, authority };
  }
  return split(target, e, authority);
}

/** The request-target to forward: the checked path (and query), or `*` / the authority. */
export function forwardTarget(t: NormalizedTarget): string {
  if (t.path === null) return t.authority ?? '*';
  return t.query === null ? t.path : t.path + '?' + t.query;
}

function split(target: string, from: number, authority: string | null): NormalizedTarget | PathErrorCode {
  const q = target.indexOf('?', from);
  const raw = q === -1 ? (from === 0 ? target : target.slice(from)) : target.slice(from, q);
  const path = normalizePath(raw);
  if (isPathError(path)) return path;
  let query: string | null = null;
  if (q !== -1) {
    query = checkedQuery(target.slice(q + 1));
    if (query === null) return 'BAD_TARGET';
  }
  return { path, query, authority };
}

// The query is not normalized (no policy reads it), only held to request-target characters.
function checkedQuery(q: string): string | null {
  for (let i = 0; i < q.length; i++) {
    const c = q.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x23) return null;
  }
  return q;
}

/** Normalize an origin-form path (no query). Returns the path, or an error code (see isPathError). */
export function normalizePath(p: string): string | PathErrorCode {
  const n = p.length;
  if (n === 0 || p.charCodeAt(0) !== 0x2f) return 'BAD_TARGET';
  let simple = true;
  let prev = 0x2f;
  for (let i = 1; i < n; i++) {
    const c = p.charCodeAt(i);
    if (c === 0x25) simple = false;
    else if (c === 0x5c) return 'BACKSLASH';
    else if (c === 0) return 'NUL';
    else if (c < 0x21 || c > 0x7e || c === 0x3f || c === 0x23) return 'BAD_TARGET';
    else if (prev === 0x2f && (c === 0x2f || c === 0x2e)) simple = false; // `//`, or maybe a dot segment
    prev = c;
  }
  return simple ? p : slowNormalize(p);
}

function slowNormalize(p: string): string | PathErrorCode {
  // 1. Percent-escapes: decode unreserved, upper-case the rest, refuse the dangerous ones.
  let d = p;
  let i = p.indexOf('%');
  if (i !== -1) {
    d = '';
    let last = 0;
    while (i !== -1) {
      const h = HEX[p.charCodeAt(i + 1)];
      const l = HEX[p.charCodeAt(i + 2)];
      if (h === undefined || l === undefined || h < 0 || l < 0) return 'BAD_PERCENT';
      const b = h * 16 + l;
      if (b === 0x2f) return 'ENCODED_SLASH';
      if (b === 0x5c) return 'ENCODED_BACKSLASH';
      if (b === 0) return 'NUL';
      d += p.slice(last, i);
      d += UNRESERVED[b] === 1 ? String.fromCharCode(b) : '%' + HEX_UPPER[h] + HEX_UPPER[l];
      last = i + 3;
      i = p.indexOf('%', last);
    }
    d += p.slice(last);
  }
  // 2. Segments: drop empty ones (merging slashes) and `.`, pop on `..`; keep a trailing slash.
  const segs: string[] = [];
  let trailing = false;
  const n = d.length;
  let s = 1;
  while (s <= n) {
    let e = d.indexOf('/', s);
    if (e === -1) e = n;
    const len = e - s;
    if (len === 0 || (len === 1 && d.charCodeAt(s) === 0x2e)) {
      trailing = true;
    } else if (len === 2 && d.charCodeAt(s) === 0x2e && d.charCodeAt(s + 1) === 0x2e) {
      segs.pop();
      trailing = true;
    } else {
      segs.push(d.slice(s, e));
      trailing = false;
    }
    s = e + 1;
  }
  if (segs.length === 0) return '/';
  const out = '/' + segs.join('/');
  return trailing ? out + '/' : out;
}
