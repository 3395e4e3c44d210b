// What both HTTP sides share: parser limits, hop-by-hop and identity header filtering, and the
// proxy's own error responses (a status, a stable reason in `x-hostmesh-error`, a short body).
import type http from 'node:http';

/** Hardened parser settings for every HTTP listener of the proxy. node's llhttp refuses CL+TE. */
export const SERVER_LIMITS: http.ServerOptions = {
  maxHeaderSize: 16 * 1024,
  requestTimeout: 60_000,
  headersTimeout: 15_000,
  keepAliveTimeout: 30_000,
  requireHostHeader: false,
  joinDuplicateHeaders: false,
};

// RFC 9110 §7.6.1 hop-by-hop fields, which a proxy must not forward; plus transfer-encoding, which
// node re-frames itself.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'proxy-authenticate']);

function isIdentityHeader(lower: string): boolean {
  return lower === 'x-forwarded-client-cert' || lower.startsWith('x-hostmesh-');
}

/** Headers to forward, as a flat [name, value, …] list; also drops fields named in `Connection`. */
export function copyRequestHeaders(raw: string[], stripIdentity: boolean): string[] {
  let connectionTokens: Set<string> | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'connection') {
      for (const t of raw[i + 1]!.split(',')) {
        const tok = t.trim().toLowerCase();
        if (tok && tok !== 'close' && tok !== 'keep-alive') (connectionTokens ??= new Set()).add(tok);
      }
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) continue;
    if (connectionTokens?.has(lower)) continue;
    if (stripIdentity && isIdentityHeader(lower)) continue;
    out.push(name, raw[i + 1]!);
  }
  return out;
}

export function copyResponseHeaders(raw: string[]): string[] {
  return copyRequestHeaders(raw, false);
}

export function headerValue(raw: string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === lower) return raw[i + 1];
  return undefined;
}

export function sendError(res: http.ServerResponse, status: number, reason: string, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${message}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-hostmesh-error': reason });
  res.end(body);
}
