// First contact: the agent has no CA yet, only the root's fingerprint from the install command. It
// takes the chain the server presents without trusting it, finds the cert with that fingerprint,
// and checks it is a self-signed CA that signed the server's leaf. Everything after uses that root
// as the only CA, with normal TLS verification.
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { HmError } from '../../shared/errors.js';
import { fingerprintOfDer, trustDomainOfRoot } from '../certs/pem.js';

export interface PinnedRoot {
  rootPem: string;
  /** From the root's `spiffe://<td>` URI SAN; null if the root records none. */
  trustDomain: string | null;
}

export function hostPortOf(serverUrl: string): { host: string; port: number } {
  const u = new URL(serverUrl);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 443) };
}

/** Network failures reject with the socket's error (retryable); a wrong server with HM_ERR_PIN_MISMATCH. */
export async function fetchPinnedRoot(serverUrl: string, fingerprint: string, timeoutMs = 10_000): Promise<PinnedRoot> {
  const chain = await peerChain(serverUrl, timeoutMs);
  return checkPin(serverUrl, chain, fingerprint);
}

function peerChain(serverUrl: string, timeoutMs: number): Promise<Buffer[]> {
  const { host, port } = hostPortOf(serverUrl);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      ...(net.isIP(host) ? {} : { servername: host }),
      // Deliberately unverified: the pin below is the verification. Nothing is sent on this socket.
      rejectUnauthorized: false,
    });
    socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error(`no TLS handshake within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    socket.once('error', reject);
    socket.once('secureConnect', () => {
      const out: Buffer[] = [];
      const seen = new Set<string>();
      let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      while (c && c.raw && !seen.has(c.fingerprint256)) {
        seen.add(c.fingerprint256);
        out.push(c.raw);
        c = c.issuerCertificate;
      }
      socket.end();
      resolve(out);
    });
  });
}

export function checkPin(serverUrl: string, chainDer: readonly Buffer[], fingerprint: string): PinnedRoot {
  const mismatch = (why: string): HmError =>
    new HmError(
      'HM_ERR_PIN_MISMATCH',
      `${serverUrl} is not the hostmesh server the pin names: ${why}. Check server: and caFingerprint: (the install command prints both); not retrying`,
    );
  const index = chainDer.findIndex((der) => fingerprintOfDer(der) === fingerprint.toLowerCase());
  if (index < 0) throw mismatch(`none of the ${chainDer.length} certificate(s) it presents has fingerprint ${fingerprint}`);
  const root = new X509Certificate(chainDer[index]!);
  if (!root.ca || !root.checkIssued(root) || !root.verify(root.publicKey)) throw mismatch('the pinned certificate is not a self-signed CA');
  const leaf = new X509Certificate(chainDer[0]!);
  if (!leaf.checkIssued(root) || !leaf.verify(root.publicKey)) throw mismatch('its certificate is not signed by the pinned CA');
  const rootPem = root.toString();
  return { rootPem: rootPem.endsWith('\n') ? rootPem : `${rootPem}\n`, trustDomain: trustDomainOfRoot(rootPem) };
}
