// Header edits both sides make before forwarding a head, on the parser's flat lower-case array.
// The common case (no hop-by-hop field at all) is recognised with one pass of length compares, so
// a response with clean headers is forwarded as the very bytes that came in.
import { removeHeader, stripHopByHop } from '../../http/head-writer.js';

/** Whether any field must go before forwarding: hop-by-hop ones, and proxy credentials. */
export function hasHopByHop(h: readonly string[]): boolean {
  for (let i = 0; i < h.length; i += 2) {
    const k = h[i] as string;
    switch (k.length) {
      case 2:
        if (k === 'te') return true;
        break;
      case 7:
        if (k === 'upgrade') return true;
        break;
      case 10:
        if (k === 'connection' || k === 'keep-alive') return true;
        break;
      case 16:
        if (k === 'proxy-connection') return true;
        break;
      case 18:
        if (k === 'proxy-authenticate') return true;
        break;
      case 19:
        if (k === 'proxy-authorization') return true;
        break;
    }
  }
  return false;
}

/**
 * Remove what must not be forwarded. Upgrades are not proxied (as with the node:http version), so
 * `upgrade` always goes and the upstream answers the request as an ordinary one. Proxy credentials
 * are meant for a proxy, and this one takes none.
 */
export function stripForForward(h: string[]): void {
  if (!hasHopByHop(h)) return;
  stripHopByHop(h, null);
  removeHeader(h, 'proxy-authorization');
  removeHeader(h, 'proxy-authenticate');
}

/** The `timeout=N` of a Keep-Alive field, in seconds, or -1. */
export function keepAliveTimeout(h: readonly string[]): number {
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== 'keep-alive') continue;
    const m = /(?:^|[\s,;])timeout\s*=\s*(\d{1,6})/i.exec(h[i + 1] as string);
    return m ? Number(m[1]) : -1;
  }
  return -1;
}
