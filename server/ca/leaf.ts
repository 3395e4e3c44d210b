import { randomBytes } from 'node:crypto';
import { ECDSA_SHA256 } from './keys.js';
import { x509, type CryptoKey, type X509 } from './x509.js';

/** Tolerates agents whose clock runs a little behind the server's. */
export const CLOCK_SKEW_MS = 60_000;

export interface Issuer {
  cert: X509.X509Certificate;
  key: CryptoKey;
}

export interface LeafSpec {
  commonName: string;
  publicKey: X509.PublicKey;
  keyType: 'ec' | 'rsa';
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
  extendedKeyUsages: X509.ExtendedKeyUsage[];
  ttlMs: number;
}

/**
 * 16 random bytes with the top bit clear (so the DER INTEGER is positive) and the next bit set (so
 * it has no leading zero byte to strip and is always exactly 16 bytes long).
 */
export function randomSerialHex(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x40;
  return b.toString('hex');
}

export async function signLeaf(issuer: Issuer, spec: LeafSpec): Promise<X509.X509Certificate> {
  const now = Date.now();
  const notBefore = new Date(now - CLOCK_SKEW_MS);
  // A leaf outliving its root would fail verification at the end anyway; say so in the cert.
  const notAfter = new Date(Math.min(now + spec.ttlMs, issuer.cert.notAfter.getTime()));
  if (notAfter.getTime() <= now) throw new Error('CA root certificate has expired');

  let usages = x509.KeyUsageFlags.digitalSignature;
  // RSA key exchange (non-ECDHE TLS suites) encrypts to the cert key; EC keys never do that.
  if (spec.keyType === 'rsa') usages |= x509.KeyUsageFlags.keyEncipherment;

  const sans: X509.JsonGeneralName[] = [
    ...spec.uris.map((value) => ({ type: 'url' as const, value })),
    ...spec.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...spec.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
  ];

  const extensions: X509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usages, true),
    new x509.ExtendedKeyUsageExtension(spec.extendedKeyUsages, false),
    await x509.SubjectKeyIdentifierExtension.create(spec.publicKey),
    await authorityKeyId(issuer.cert),
  ];
  // RFC 5280 requires at least one name in a SAN extension, so omit it rather than emit it empty.
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));

  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: [{ CN: [spec.commonName] }],
    // Reuse the root's encoded name so issuer/subject match byte for byte during chain building.
    issuer: issuer.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: spec.publicKey,
    signingKey: issuer.key,
    signingAlgorithm: ECDSA_SHA256,
    extensions,
  });
}

/** AKI must equal the root's own SKI, so copy it rather than recompute it a possibly different way. */
async function authorityKeyId(root: X509.X509Certificate): Promise<X509.AuthorityKeyIdentifierExtension> {
  const ski = root.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId, false);
  return x509.AuthorityKeyIdentifierExtension.create(root.publicKey, false);
}
