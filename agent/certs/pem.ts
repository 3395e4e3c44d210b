// Certificate facts the agent needs, read with node:crypto only (no native addon, nothing that
// would stop the agent from being bundled into one file).
import { createHash, createPublicKey, X509Certificate } from 'node:crypto';

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Each CERTIFICATE block of `text`, in order, as a clean PEM string ending in a newline. */
export function certBlocks(text: string): string[] {
  return (text.match(PEM_CERT_RE) ?? []).map((b) => `${b}\n`);
}

export function fingerprintOfDer(der: Buffer): string {
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

export interface CertInfo {
  x509: X509Certificate;
  notBefore: number;
  notAfter: number;
  /** URI SANs, e.g. spiffe://hostmesh.local/host/web-1. */
  uris: string[];
}

export function parseCert(pem: string): CertInfo {
  const x = new X509Certificate(pem);
  return { x509: x, notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo), uris: urisOf(x) };
}

export function urisOf(x: X509Certificate): string[] {
  // Node renders the SAN as `URI:a, DNS:b`; hostmesh URIs never contain ", ".
  return (x.subjectAltName ?? '')
    .split(', ')
    .filter((p) => p.startsWith('URI:'))
    .map((p) => p.slice(4));
}

/** The trust domain a hostmesh root records as its `spiffe://<td>` URI SAN, or null. */
export function trustDomainOfRoot(rootPem: string): string | null {
  for (const uri of urisOf(new X509Certificate(rootPem))) {
    const m = /^spiffe:\/\/([^/]+)$/.exec(uri);
    if (m) return m[1]!;
  }
  return null;
}

/** True when `keyPem` is the private half of the certificate's public key. */
export function keyMatchesCert(keyPem: string, cert: X509Certificate): boolean {
  try {
    const fromKey = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
    return fromKey.equals(cert.publicKey.export({ type: 'spki', format: 'der' }));
  } catch {
    return false;
  }
}

/** True when `leaf` was issued and signed by one of `roots`. */
export function issuedByAny(leaf: X509Certificate, roots: readonly X509Certificate[]): boolean {
  return roots.some((r) => {
    try {
      return leaf.checkIssued(r) && leaf.verify(r.publicKey);
    } catch {
      return false;
    }
  });
}
