import { HmError } from '../../shared/errors.js';
import type { SpiffeId } from '../../shared/identity.js';
import { checkCsr } from './csr.js';
import { generateP256, privateKeyToPem, spkiOfP256KeyPem } from './keys.js';
import { signLeaf, type Issuer } from './leaf.js';
import { checkDnsNames, checkIpAddresses, resolveIdentity } from './names.js';
import { fingerprintOfDer, fingerprintOfPem, joinPem } from './pem.js';
import { loadOrCreateRoot } from './root.js';
import { x509, type X509 } from './x509.js';

export { fingerprintOfPem };

export interface IssuedCert {
  /** The leaf. */
  certPem: string;
  /** Leaf then root, so a peer that only pinned the root's fingerprint can still see it. */
  chainPem: string;
  spiffeId: string;
  /** Hex. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export interface SignOptions {
  identity: string | SpiffeId;
  ttlMs: number;
  /** Extra DNS SANs, e.g. `<service>.<trustDomain>` so peers can verify by SNI. */
  dnsNames?: string[];
}

export interface ServerCertOptions {
  dnsNames: string[];
  ipAddresses: string[];
  ttlMs: number;
  /** Keep this P-256 key (PKCS#8 PEM) instead of making one, so a pin on the server's public key survives. */
  keyPem?: string;
}

export interface IssuedServerCert {
  certPem: string;
  /** Leaf then root; what a TLS listener should send so first-contact clients can check the pin. */
  chainPem: string;
  keyPem: string;
  notAfter: Date;
}

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
export const MIN_LEAF_TTL_MS = MINUTE;
// Mesh leaves are short-lived and renewed; a long one would outlive any revocation-by-expiry story.
export const MAX_LEAF_TTL_MS = 90 * DAY;
// The server's own HTTPS cert is renewed on restart, not by an agent loop, so it may live longer.
export const MAX_SERVER_TTL_MS = 398 * DAY;

const ttlError = (ttlMs: number, max: number): HmError =>
  new HmError('HM_ERR_VALIDATION', `certificate ttl ${ttlMs} ms is outside ${MIN_LEAF_TTL_MS} ms .. ${max / DAY} days`, {
    violations: [{ field: 'ttlMs', message: `must be between 60 s and ${max / DAY} days` }],
  });

function checkTtl(ttlMs: number, max: number): void {
  if (!Number.isFinite(ttlMs) || ttlMs < MIN_LEAF_TTL_MS || ttlMs > max) throw ttlError(ttlMs, max);
}

// X.520 caps a CN at 64 characters; the SANs carry the real names anyway.
function serverCommonName(dnsNames: string[], ipAddresses: string[]): string {
  const first = dnsNames[0] ?? ipAddresses[0];
  return first !== undefined && first.length <= 64 ? first : 'hostmesh server';
}

function internal(err: unknown): HmError {
  return new HmError('HM_ERR_INTERNAL', `certificate signing failed: ${(err as Error).message}`, { cause: err });
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly rootPem: string;
  readonly fingerprint: string;
  readonly notAfter: Date;
  readonly #issuer: Issuer;

  private constructor(trustDomain: string, rootPem: string, issuer: Issuer) {
    this.trustDomain = trustDomain;
    this.rootPem = rootPem;
    this.#issuer = issuer;
    this.fingerprint = fingerprintOfDer(new Uint8Array(issuer.cert.rawData));
    this.notAfter = issuer.cert.notAfter;
  }

  /** Loads the root from `dir` (creating dir 0700, root key 0600, root cert on first call). */
  static async loadOrCreate(dir: string, trustDomain: string): Promise<CertificateAuthority> {
    const root = await loadOrCreateRoot(dir, trustDomain);
    // Re-serialise from DER so rootPem is exactly one clean block even if the file had extra text.
    const rootPem = root.cert.toString('pem');
    return new CertificateAuthority(trustDomain, joinPem(rootPem), root);
  }

  /** Verify and sign a PEM PKCS#10 CSR into a leaf for `identity`. */
  async signCsr(csrPem: string, opts: SignOptions): Promise<IssuedCert> {
    checkTtl(opts.ttlMs, MAX_LEAF_TTL_MS);
    const { uri, id } = resolveIdentity(opts.identity, this.trustDomain);
    const dnsNames = checkDnsNames(opts.dnsNames);
    const { publicKey, keyType } = await checkCsr(csrPem, uri);

    let cert: X509.X509Certificate;
    try {
      cert = await signLeaf(this.#issuer, {
        commonName: id.name,
        publicKey,
        keyType,
        uris: [uri],
        dnsNames,
        ipAddresses: [],
        extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        ttlMs: opts.ttlMs,
      });
    } catch (err) {
      throw internal(err);
    }
    const certPem = joinPem(cert.toString('pem'));
    return {
      certPem,
      chainPem: joinPem(certPem, this.rootPem),
      spiffeId: uri,
      serial: cert.serialNumber,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
    };
  }

  /** Issue a server TLS cert+key for the server's own HTTPS listener (key generated here). */
  async issueServerCert(opts: ServerCertOptions): Promise<IssuedServerCert> {
    checkTtl(opts.ttlMs, MAX_SERVER_TTL_MS);
    const dnsNames = checkDnsNames(opts.dnsNames);
    const ipAddresses = checkIpAddresses(opts.ipAddresses);
    if (dnsNames.length + ipAddresses.length === 0) {
      throw new HmError('HM_ERR_VALIDATION', 'a server certificate needs at least one DNS name or IP address');
    }
    try {
      const keys = opts.keyPem === undefined ? await generateP256() : null;
      const cert = await signLeaf(this.#issuer, {
        commonName: serverCommonName(dnsNames, ipAddresses),
        publicKey: keys ? await x509.PublicKey.create(keys.publicKey) : new x509.PublicKey(spkiOfP256KeyPem(opts.keyPem!)),
        keyType: 'ec',
        uris: [],
        dnsNames,
        ipAddresses,
        // Only serverAuth: this key must not be usable to impersonate an agent to other agents.
        extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth],
        ttlMs: opts.ttlMs,
      });
      const certPem = joinPem(cert.toString('pem'));
      return {
        certPem,
        chainPem: joinPem(certPem, this.rootPem),
        keyPem: keys ? await privateKeyToPem(keys.privateKey) : opts.keyPem!,
        notAfter: cert.notAfter,
      };
    } catch (err) {
      throw internal(err);
    }
  }
}
