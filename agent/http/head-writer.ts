// Rewrites and serializes message heads for the byte-forwarding proxy.
//
// Headers are the parser's flat [name, value, …] array (names lower-case) and are edited in place:
// removal compacts the array in one pass, so stripping identity and hop-by-hop headers costs one
// walk and no new array. Serialization builds one string and encodes it once as latin1 (every
// value came in as latin1, so the bytes go out exactly as they came). V8 concatenates into a rope
// and flattens it once in Buffer.from; sockets also accept the string itself with 'latin1'.
//
// A typical inbound rewrite:
//   IDENTITY_HEADERS.apply(h);                 // a caller may not claim an identity
//   stripHopByHop(h, head.upgrade);            // hop-by-hop headers are not forwarded
//   setHeader(h, 'x-hostmesh-source', source); // ours, from the verified certificate
//   if (indexOfHeader(h, 'x-request-id') === -1) addHeader(h, 'x-request-id', id);
//   socket.write(serializeRequestHead(head.method, forwardTarget(t), '1.1', h), 'latin1');
import { CONN_OTHER, connectionFlags, hasListToken, isToken, listTokens } from './chars.js';

/** Index of the first `name` (lower-case) at or after `from` (a name slot), or -1. */
export function indexOfHeader(headers: readonly string[], name: string, from = 0): number {
  for (let i = from; i < headers.length; i += 2) if (headers[i] === name) return i;
  return -1;
}

/** The first value of `name`, or undefined. */
export function getHeader(headers: readonly string[], name: string): string | undefined {
  const i = indexOfHeader(headers, name);
  return i === -1 ? undefined : headers[i + 1];
}

/** Remove every `name` field; returns how many were removed. */
export function removeHeader(headers: string[], name: string): number {
  let w = 0;
  const n = headers.length;
  for (let r = 0; r < n; r += 2) {
    const k = headers[r] as string;
    if (k === name) continue;
    if (w !== r) {
      headers[w] = k;
      headers[w + 1] = headers[r + 1] as string;
    }
    w += 2;
  }
  headers.length = w;
  return (n - w) / 2;
}

/** Remove every field whose name starts with `prefix` (lower-case); returns how many. */
export function removeHeaderPrefix(headers: string[], prefix: string): number {
  let w = 0;
  const n = headers.length;
  for (let r = 0; r < n; r += 2) {
    const k = headers[r] as string;
    if (k.startsWith(prefix)) continue;
    if (w !== r) {
      headers[w] = k;
      headers[w + 1] = headers[r + 1] as string;
    }
    w += 2;
  }
  headers.length = w;
  return (n - w) / 2;
}

/**
 * A set of names and name prefixes to remove, compiled once (at config time) and applied to each
 * head in one pass. Prefix checks run only for names that start with a prefix's first character.
 */
export class HeaderFilter {
  readonly #names: ReadonlySet<string>;
  readonly #prefixes: readonly string[];
  readonly #firstChars: ReadonlySet<number>;
  readonly #underscoreAsDash: boolean;

  /**
   * `underscoreAsDash`: `_` in a name matches `-` too. CGI-style servers (Rack, PHP, WSGI) read
   * `X_Hostmesh_Source` and `X-Hostmesh-Source` as the same HTTP_X_HOSTMESH_SOURCE, and some let
   * the caller's copy win over ours.
   */
  constructor(names: readonly string[], prefixes: readonly string[] = [], opts: { underscoreAsDash?: boolean } = {}) {
    this.#names = new Set(names.map((n) => n.toLowerCase()));
    this.#prefixes = prefixes.map((p) => p.toLowerCase()).filter((p) => p.length > 0);
    this.#firstChars = new Set(this.#prefixes.map((p) => p.charCodeAt(0)));
    this.#underscoreAsDash = opts.underscoreAsDash ?? false;
  }

  /** Whether `name` (lower-case) is filtered out. */
  matches(name: string): boolean {
    if (this.#names.has(name)) return true;
    if (this.#firstChars.has(name.charCodeAt(0))) for (const p of this.#prefixes) if (name.startsWith(p)) return true;
    // Rare: only names with an underscore pay for the second look.
    return this.#underscoreAsDash && name.includes('_') && this.matches(name.replaceAll('_', '-'));
  }

  /** Remove the matching fields in place; returns how many were removed. */
  apply(headers: string[]): number {
    let w = 0;
    const n = headers.length;
    for (let r = 0; r < n; r += 2) {
      const k = headers[r] as string;
      if (this.matches(k)) continue;
      if (w !== r) {
        headers[w] = k;
        headers[w + 1] = headers[r + 1] as string;
      }
      w += 2;
    }
    headers.length = w;
    return (n - w) / 2;
  }
}

/**
 * Headers through which a caller could claim an identity or a mesh decision: removed from every
 * inbound request before the agent adds its own from the verified certificate.
 */
export const IDENTITY_HEADERS = new HeaderFilter(['x-forwarded-client-cert'], ['x-hostmesh-'], { underscoreAsDash: true });

/** Replace the value of the first `name` field and drop any others; append it if absent. */
export function setHeader(headers: string[], name: string, value: string): void {
  assertField(name, value);
  const i = indexOfHeader(headers, name);
  if (i === -1) {
    headers.push(name, value);
    return;
  }
  headers[i + 1] = value;
  if (indexOfHeader(headers, name, i + 2) === -1) return;
  // Rare: repeated field. Keep the first slot (wire order), drop the rest.
  let w = i + 2;
  for (let r = i + 2; r < headers.length; r += 2) {
    const k = headers[r] as string;
    if (k === name) continue;
    headers[w] = k;
    headers[w + 1] = headers[r + 1] as string;
    w += 2;
  }
  headers.length = w;
}

/** Append a field (even if one of that name exists). */
export function addHeader(headers: string[], name: string, value: string): void {
  assertField(name, value);
  headers.push(name, value);
}

// Values the agent adds come from certificates, generated ids and config, never raw from a peer;
// still, a CR or LF here would let one value write a whole header, so it is checked. This is a
// programming error, hence a throw and not a reason code.
function assertField(name: string, value: string): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) throw new TypeError(`invalid value for header ${name}`);
  }
  if (!isToken(name, 0, name.length)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) throw new TypeError(`header name ${JSON.stringify(name)} must be lower-case`);
  }
}

// Never removed because a Connection header names them: dropping the framing or Host of a message
// whose body is forwarded verbatim would make the upstream read the body as the next request
// (the classic hop-by-hop smuggling trick). The agent's own headers are added after stripping.
const NOT_NOMINABLE: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'host']);

/**
 * Remove hop-by-hop fields (RFC 9110 §7.6.1): `connection` and every field it nominates,
 * `keep-alive`, `proxy-connection`, `te` (re-added as `te: trailers` when the client accepts
 * trailers, which gRPC needs), and `upgrade` unless this request is being upgraded — then
 * `upgrade` stays and `connection: upgrade` is written back.
 *
 * `transfer-encoding` is hop-by-hop too but stays: the body is forwarded as received, chunked
 * framing included. Persistence is not expressed: both hops default to HTTP/1.1 keep-alive, and
 * the proxy adds `connection: close` itself when it means to close.
 */
export function stripHopByHop(headers: string[], upgrade: string | null): void {
  let nominated: string[] | null = null;
  let trailers = false;
  for (let i = 0; i < headers.length; i += 2) {
    const k = headers[i] as string;
    if (k === 'connection') {
      const v = headers[i + 1] as string;
      if ((connectionFlags(v) & CONN_OTHER) !== 0) listTokens(v, (nominated ??= []));
    } else if (k === 'te') {
      if (hasListToken(headers[i + 1] as string, 'trailers')) trailers = true;
    }
  }
  const upgrading = upgrade !== null;
  let w = 0;
  const n = headers.length;
  for (let r = 0; r < n; r += 2) {
    const k = headers[r] as string;
    if (isHopByHop(k, upgrading)) continue;
    // `Connection: upgrade, http2-settings` nominates `upgrade` too: kept when upgrading.
    if (nominated !== null && nominated.includes(k) && !NOT_NOMINABLE.has(k) && !(upgrading && k === 'upgrade')) continue;
    if (w !== r) {
      headers[w] = k;
      headers[w + 1] = headers[r + 1] as string;
    }
    w += 2;
  }
  headers.length = w;
  if (trailers) headers.push('te', 'trailers');
  if (upgrading) headers.push('connection', 'upgrade');
}

function isHopByHop(name: string, upgrading: boolean): boolean {
  switch (name.length) {
    case 2:
      return name === 'te';
    case 7:
      return name === 'upgrade' && !upgrading;
    case 10:
      return name === 'connection' || name === 'keep-alive';
    case 16:
      return name === 'proxy-connection';
    default:
      return false;
  }
}

/** `METHOD target HTTP/1.x\r\n` + fields + `\r\n`, as a latin1 string. */
export function serializeRequestHead(method: string, target: string, version: '1.0' | '1.1', headers: readonly string[]): string {
  let s = method + ' ' + target + (version === '1.1' ? ' HTTP/1.1\r\n' : ' HTTP/1.0\r\n');
  for (let i = 0; i < headers.length; i += 2) s += headers[i] + ': ' + headers[i + 1] + '\r\n';
  return s + '\r\n';
}

/** `HTTP/1.x status reason\r\n` + fields + `\r\n`, as a latin1 string. */
export function serializeResponseHead(status: number, reason: string, version: '1.0' | '1.1', headers: readonly string[]): string {
  let s = (version === '1.1' ? 'HTTP/1.1 ' : 'HTTP/1.0 ') + status + ' ' + reason + '\r\n';
  for (let i = 0; i < headers.length; i += 2) s += headers[i] + ': ' + headers[i + 1] + '\r\n';
  return s + '\r\n';
}

/** serializeRequestHead as bytes. */
export function encodeRequestHead(method: string, target: string, version: '1.0' | '1.1', headers: readonly string[]): Buffer {
  return Buffer.from(serializeRequestHead(method, target, version, headers), 'latin1');
}

/** serializeResponseHead as bytes. */
export function encodeResponseHead(status: number, reason: string, version: '1.0' | '1.1', headers: readonly string[]): Buffer {
  return Buffer.from(serializeResponseHead(status, reason, version, headers), 'latin1');
}
