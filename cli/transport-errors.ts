// Turn the errors of a failed HTTPS exchange into one line that says what happened and what to
// change. Node and undici report the same failure under several shapes (a code on the error, on
// its cause, or inside an AggregateError from happy-eyeballs), so the code is dug out first.
import { CliError } from './errors.js';

/** OpenSSL verification codes meaning "this chain does not lead to the CA we were given". */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
]);

export interface Target {
  url: string;
  /** Where the trusted root came from, e.g. `--ca-file root.pem`. */
  caSource: string;
  timeoutMs: number;
}

/** The most specific code in the error, its causes and its aggregated errors. */
export function errorCode(e: unknown): string | undefined {
  const found: string[] = [];
  const queue: unknown[] = [e];
  for (let i = 0; i < queue.length && i < 16; i++) {
    const cur = queue[i] as { code?: unknown; name?: unknown; errors?: unknown; cause?: unknown } | null;
    if (!cur || typeof cur !== 'object') continue;
    if (typeof cur.code === 'string') found.push(cur.code);
    else if (cur.name === 'TimeoutError' || cur.name === 'AbortError') found.push(cur.name);
    if (cur.cause) queue.push(cur.cause);
    if (Array.isArray(cur.errors)) queue.push(...cur.errors);
  }
  // A socket error wrapping the real reason says less than the reason.
  return found.find((c) => c !== 'UND_ERR_SOCKET') ?? found[0];
}

export function describeTransportError(e: unknown, t: Target): CliError {
  const code = errorCode(e);
  const reach = `cannot reach the server at ${t.url}`;
  const hint = '(is it running? set --server or HOSTMESH_ADDR)';
  const seconds = `${Math.round(t.timeoutMs / 1000)}s`;
  if (code && UNTRUSTED.has(code)) {
    return new CliError(`the server's certificate at ${t.url} does not chain to the mesh root from ${t.caSource} (${code})`);
  }
  switch (code) {
    case 'ECONNREFUSED':
      return new CliError(`${reach}: connection refused ${hint}`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new CliError(`${reach}: cannot resolve the host name (set --server or HOSTMESH_ADDR)`);
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new CliError(`${reach}: no route to host ${hint}`);
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return new CliError(`${reach}: connection timed out after ${seconds} ${hint}`);
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_ABORTED':
    case 'ABORT_ERR':
    case 'TimeoutError':
    case 'AbortError':
      return new CliError(`the server at ${t.url} did not answer within ${seconds}`);
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_SOCKET':
      return new CliError(`the connection to ${t.url} was closed unexpectedly (is it a hostmesh server speaking HTTPS?)`);
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return new CliError(
        `the server's certificate is not valid for ${new URL(t.url).hostname} (use the address the server certificate names in --server or HOSTMESH_ADDR)`,
      );
    case 'CERT_HAS_EXPIRED':
      return new CliError(`the server's certificate at ${t.url} has expired`);
    case 'CERT_NOT_YET_VALID':
      return new CliError(`the server's certificate at ${t.url} is not valid yet (check this machine's clock)`);
    case 'EPROTO':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return new CliError(`the server at ${t.url} did not answer with TLS (is that port the hostmesh server's HTTPS port?)`);
    default: {
      const msg = e instanceof Error ? e.message : String(e);
      return new CliError(`${reach}: ${msg}${code && !msg.includes(code) ? ` (${code})` : ''}`);
    }
  }
}
