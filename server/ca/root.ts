import { promises as fs } from 'node:fs';
import path from 'node:path';
import { HmError } from '../../shared/errors.js';
import { isTrustDomain } from '../../shared/identity.js';
import { webcrypto } from 'node:crypto';
import { CLOCK_SKEW_MS, randomSerialHex, type Issuer } from './leaf.js';
import { EC_P256, ECDSA_SHA256, generateP256, importP256SigningKey, spkiOfPrivateKeyPem } from './keys.js';
import { pemBlocks, toPem } from './pem.js';
import { CERT_MODE, KEY_MODE, exists, tightenKeyMode, writeFileAtomic } from '../../shared/files.js';
import { x509, type X509 } from './x509.js';

export const ROOT_CERT_FILE = 'root.crt.pem';
export const ROOT_KEY_FILE = 'root.key.pem';
const ROOT_VALIDITY_YEARS = 10;

export interface LoadedRoot extends Issuer {
  certPem: string;
}

function startup(message: string, cause?: unknown): HmError {
  return new HmError('HM_ERR_STARTUP', message, cause === undefined ? {} : { cause });
}

export function rootCommonName(trustDomain: string): string {
  return `hostmesh root CA ${trustDomain}`;
}

/** The trust domain a root was made for, recorded as its `spiffe://<td>` URI SAN. */
export function trustDomainOfRoot(cert: X509.X509Certificate): string | null {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  for (const n of san?.names.items ?? []) {
    const m = n.type === 'url' ? /^spiffe:\/\/([^/]+)$/.exec(n.value) : null;
    if (m?.[1]) return m[1];
  }
  return null;
}

async function createRoot(dir: string, trustDomain: string): Promise<LoadedRoot> {
  const keys = await generateP256();
  const now = new Date();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + ROOT_VALIDITY_YEARS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ CN: [rootCommonName(trustDomain)] }],
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter,
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      // pathLen 0: this root signs leaves only, so a leaf can never be turned into an intermediate.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }], false),
    ],
  });
  const certPem = cert.toString('pem') + '\n';
  const pkcs8 = new Uint8Array(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = toPem(pkcs8, 'PRIVATE KEY');

  // Key first and never over an existing one: losing a CA key would orphan every agent. If we crash
  // before the cert lands, the next start reports the missing cert instead of minting a new CA.
  await writeFileAtomic(path.join(dir, ROOT_KEY_FILE), keyPem, KEY_MODE, { noClobber: true });
  await writeFileAtomic(path.join(dir, ROOT_CERT_FILE), certPem, CERT_MODE, { noClobber: true });
  // Swap the extractable key we needed for writing the file for one that can only sign.
  return { cert, certPem, key: await importP256SigningKey(pkcs8) };
}

async function readText(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw startup(`cannot read ${what} ${file}: ${(err as Error).message}`, err);
  }
}

async function loadRoot(dir: string, trustDomain: string): Promise<LoadedRoot> {
  const certFile = path.join(dir, ROOT_CERT_FILE);
  const keyFile = path.join(dir, ROOT_KEY_FILE);

  const certPem = await readText(certFile, 'CA certificate');
  let cert: X509.X509Certificate;
  let isRoot: boolean;
  let recorded: string | null;
  try {
    const der = pemBlocks(certPem, 'CERTIFICATE')[0];
    if (!der) throw new Error('no PEM CERTIFICATE block');
    cert = new x509.X509Certificate(der);
    // Fields decode lazily, so read everything we need inside this try: a damaged extension
    // must surface as "corrupt file", not as a stray parser exception later.
    isRoot = cert.getExtension(x509.BasicConstraintsExtension)?.ca === true && (await cert.isSelfSigned());
    recorded = trustDomainOfRoot(cert);
    void cert.notAfter.getTime();
    void cert.publicKey.rawData;
  } catch (err) {
    throw startup(`CA certificate ${certFile} is corrupt: ${(err as Error).message}`, err);
  }
  if (!isRoot) throw startup(`CA certificate ${certFile} is not a self-signed CA certificate`);
  if (!recorded) throw startup(`CA certificate ${certFile} records no spiffe:// trust domain; it was not made by hostmesh`);
  if (recorded !== trustDomain) {
    throw startup(
      `data dir was created for trust domain ${recorded}; start with --trust-domain ${recorded} or use a new data dir`,
    );
  }
  if (cert.notAfter.getTime() <= Date.now()) {
    throw startup(`CA certificate ${certFile} expired on ${cert.notAfter.toISOString()}; every certificate it issued is invalid`);
  }

  try {
    await tightenKeyMode(keyFile);
  } catch (err) {
    throw startup(`cannot read CA key ${keyFile}: ${(err as Error).message}`, err);
  }
  const keyPem = await readText(keyFile, 'CA key');
  const keyDer = pemBlocks(keyPem, 'PRIVATE KEY')[0];
  let spki: Buffer;
  let key: Issuer['key'];
  try {
    if (!keyDer) throw new Error('no PEM "PRIVATE KEY" (PKCS#8) block');
    spki = spkiOfPrivateKeyPem(keyPem);
    key = await importP256SigningKey(keyDer);
  } catch (err) {
    throw startup(`CA key ${keyFile} is corrupt or not an ECDSA ${EC_P256.namedCurve} PKCS#8 key: ${(err as Error).message}`, err);
  }
  if (!spki.equals(Buffer.from(cert.publicKey.rawData))) {
    throw startup(`CA key ${keyFile} does not belong to CA certificate ${certFile}`);
  }
  return { cert, certPem, key };
}

/**
 * The root in `dir`, made on first call. A dir with only one of the two files is refused rather
 * than "repaired": silently minting a new root would break every agent pinned to the old one.
 */
export async function loadOrCreateRoot(dir: string, trustDomain: string): Promise<LoadedRoot> {
  if (!isTrustDomain(trustDomain)) {
    throw new HmError('HM_ERR_CONFIG', `invalid trust domain "${trustDomain}" (must be lowercase DNS labels joined by dots)`);
  }
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw startup(`cannot create CA directory ${dir}: ${(err as Error).message}`, err);
  }
  const certFile = path.join(dir, ROOT_CERT_FILE);
  const keyFile = path.join(dir, ROOT_KEY_FILE);
  let haveCert: boolean;
  let haveKey: boolean;
  try {
    [haveCert, haveKey] = await Promise.all([exists(certFile), exists(keyFile)]);
  } catch (err) {
    throw startup(`cannot access CA directory ${dir}: ${(err as Error).message}`, err);
  }
  if (haveCert && !haveKey) throw startup(`CA key ${keyFile} is missing (its certificate ${certFile} exists); restore it from backup`);
  if (haveKey && !haveCert) {
    throw startup(`CA certificate ${certFile} is missing (its key ${keyFile} exists); restore it, or remove the key to start a new CA`);
  }
  if (haveCert) return loadRoot(dir, trustDomain);
  try {
    return await createRoot(dir, trustDomain);
  } catch (err) {
    // Another process created the root between our check and our link(); use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return loadRoot(dir, trustDomain);
    if (err instanceof HmError) throw err;
    throw startup(`cannot create CA in ${dir}: ${(err as Error).message}`, err);
  }
}
