import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HmError } from '../../shared/errors.js';
import type { CertificateAuthority } from './authority.js';
import { KEY_MODE, readIfExists, tightenKeyMode, writeFileAtomic } from '../../shared/files.js';
import { spkiOfP256KeyPem, spkiOfPrivateKeyPem } from './keys.js';
import { canonicalIp, checkDnsNames, checkIpAddresses } from './names.js';
import { pemBlocks } from './pem.js';
import { x509 } from './x509.js';

export const SERVER_CERT_FILE = 'server.crt.pem';
export const SERVER_KEY_FILE = 'server.key.pem';
const DAY = 24 * 60 * 60 * 1000;
export const SERVER_CERT_TTL_MS = 365 * DAY;
// Re-issue well before expiry so a server that restarts rarely never serves an expired cert.
export const SERVER_CERT_RENEW_BEFORE_MS = 30 * DAY;

export interface ServerCertNames {
  dnsNames: string[];
  ipAddresses: string[];
}

export interface ServerCert {
  /** Leaf then root: the listener sends both so a client holding only the root fingerprint can check it. */
  certPem: string;
  keyPem: string;
  notAfter: Date;
  /** False when a new cert was issued on this call. */
  reused: boolean;
}

/**
 * The server's HTTPS cert+key kept in `dir`. Reused across restarts so a restart does not churn the
 * server key; re-issued when it nears expiry, came from another CA (e.g. the data dir's CA was
 * replaced), lacks a requested name, or does not match its key file (a crash between the writes).
 */
export async function ensureServerCert(
  ca: CertificateAuthority,
  dir: string,
  names: ServerCertNames,
): Promise<ServerCert> {
  const dnsNames = checkDnsNames(names.dnsNames);
  const ipAddresses = checkIpAddresses(names.ipAddresses);
  const certFile = path.join(dir, SERVER_CERT_FILE);
  const keyFile = path.join(dir, SERVER_KEY_FILE);
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const [certPem, keyPem] = await Promise.all([readIfExists(certFile), readIfExists(keyFile)]);
    if (certPem !== null && keyPem !== null) {
      const notAfter = reusableUntil(ca, certPem, keyPem, dnsNames, ipAddresses);
      if (notAfter) {
        await tightenKeyMode(keyFile);
        return { certPem, keyPem, notAfter, reused: true };
      }
    }
    // A re-issue keeps the key: install commands pin it (curl --pinnedpubkey), and must keep working
    // when the cert is renewed or gains a name. Deleting the key file is how to rotate it.
    const keep = keyPem !== null && isP256Key(keyPem) ? { keyPem } : {};
    const issued = await ca.issueServerCert({ dnsNames, ipAddresses, ttlMs: SERVER_CERT_TTL_MS, ...keep });
    // Key first: a crash between the two writes leaves a mismatched pair, which the next start re-issues.
    await writeFileAtomic(keyFile, issued.keyPem, KEY_MODE);
    await writeFileAtomic(certFile, issued.chainPem, KEY_MODE);
    return { certPem: issued.chainPem, keyPem: issued.keyPem, notAfter: issued.notAfter, reused: false };
  } catch (err) {
    if (err instanceof HmError) throw err;
    throw new HmError('HM_ERR_STARTUP', `cannot prepare server certificate in ${dir}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** The existing cert's expiry if it may be kept, else null. Any parse failure just means "re-issue". */
function reusableUntil(
  ca: CertificateAuthority,
  certPem: string,
  keyPem: string,
  dnsNames: string[],
  ipAddresses: string[],
): Date | null {
  try {
    const der = pemBlocks(certPem, 'CERTIFICATE')[0];
    if (!der) return null;
    const leaf = new X509Certificate(der);
    const root = new X509Certificate(ca.rootPem);
    if (!leaf.checkIssued(root) || !leaf.verify(root.publicKey)) return null;

    const parsed = new x509.X509Certificate(der);
    const now = Date.now();
    if (parsed.notBefore.getTime() > now) return null;
    if (parsed.notAfter.getTime() - now < SERVER_CERT_RENEW_BEFORE_MS) return null;

    const have = parsed.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
    const haveDns = new Set(have.filter((n) => n.type === 'dns').map((n) => n.value.toLowerCase()));
    const haveIp = new Set(have.filter((n) => n.type === 'ip').map((n) => canonicalIp(n.value)));
    if (!dnsNames.every((n) => haveDns.has(n)) || !ipAddresses.every((ip) => haveIp.has(ip))) return null;

    const certSpki = leaf.publicKey.export({ type: 'spki', format: 'der' });
    if (!spkiOfPrivateKeyPem(keyPem).equals(certSpki)) return null;
    return parsed.notAfter;
  } catch {
    return null;
  }
}

function isP256Key(keyPem: string): boolean {
  try {
    spkiOfP256KeyPem(keyPem);
    return true;
  } catch {
    return false;
  }
}
