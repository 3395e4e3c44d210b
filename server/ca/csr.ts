import { createPublicKey, type KeyObject } from 'node:crypto';
import { HmError } from '../../shared/errors.js';
import { pemBlocks } from './pem.js';
import { x509, type X509 } from './x509.js';

/** The only thing a CSR contributes to a leaf is its key; everything else comes from the request. */
export interface CheckedCsr {
  publicKey: X509.PublicKey;
  keyType: 'ec' | 'rsa';
}

// Real CSRs are a few KiB at most (RSA-8192 is ~3 KiB of PEM); the cap bounds parse work on junk.
const MAX_CSR_PEM_BYTES = 16 * 1024;
const EC_CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384' };
const RSA_MIN_BITS = 2048;
// Above this, RSA verification gets slow enough to be a cheap way to burn server CPU.
const RSA_MAX_BITS = 8192;
const SAN_OID = '2.5.29.17';

function invalid(message: string, cause?: unknown): HmError {
  return new HmError('HM_ERR_CSR_INVALID', message, cause === undefined ? {} : { cause });
}

function parse(csrPem: string): X509.Pkcs10CertificateRequest {
  if (typeof csrPem !== 'string' || csrPem.length === 0) throw invalid('CSR is empty');
  if (csrPem.length > MAX_CSR_PEM_BYTES) throw invalid(`CSR is larger than ${MAX_CSR_PEM_BYTES} bytes`);
  const blocks = pemBlocks(csrPem, 'CERTIFICATE REQUEST');
  const der = blocks[0];
  if (!der) throw invalid('CSR is not a PEM "CERTIFICATE REQUEST" block');
  if (blocks.length > 1) throw invalid('expected exactly one CSR, found several');
  try {
    return new x509.Pkcs10CertificateRequest(der);
  } catch (err) {
    throw invalid('CSR is not a valid PKCS#10 request', err);
  }
}

function checkKeyStrength(spki: ArrayBuffer): 'ec' | 'rsa' {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (err) {
    throw invalid('CSR public key cannot be read', err);
  }
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'ec': {
      const curve = details.namedCurve ?? 'unknown';
      if (!EC_CURVES[curve]) throw invalid(`CSR uses EC curve ${curve}; only P-256 and P-384 are accepted`);
      return 'ec';
    }
    case 'rsa': {
      const bits = details.modulusLength ?? 0;
      if (bits < RSA_MIN_BITS) throw invalid(`CSR uses a ${bits}-bit RSA key; at least ${RSA_MIN_BITS} bits are required`);
      if (bits > RSA_MAX_BITS) throw invalid(`CSR uses a ${bits}-bit RSA key; at most ${RSA_MAX_BITS} bits are accepted`);
      return 'rsa';
    }
    default:
      throw invalid(
        `CSR uses a ${key.asymmetricKeyType ?? 'unknown'} key; only ECDSA P-256/P-384 or RSA >= ${RSA_MIN_BITS} bits are accepted`,
      );
  }
}

/** URIs the requester put in its own SAN extension(s). */
function requestedUris(csr: X509.Pkcs10CertificateRequest): string[] {
  try {
    return csr
      .getExtensions(SAN_OID)
      .flatMap((ext) => new x509.SubjectAlternativeNameExtension(ext.rawData).names.items)
      .filter((n) => n.type === 'url')
      .map((n) => n.value);
  } catch (err) {
    throw invalid('CSR subjectAltName extension cannot be parsed', err);
  }
}

/**
 * Refuses a CSR unless it is well-formed, signed by the key it carries (proof of possession) with
 * an acceptable key, and — if it names a URI itself — names exactly `identityUri`.
 */
export async function checkCsr(csrPem: string, identityUri: string): Promise<CheckedCsr> {
  const csr = parse(csrPem);
  let publicKey: X509.PublicKey;
  try {
    publicKey = csr.publicKey;
  } catch (err) {
    throw invalid('CSR public key cannot be read', err);
  }
  // Strength first: it gives a clearer message than a verify failure for keys WebCrypto can't import.
  const keyType = checkKeyStrength(publicKey.rawData);
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw invalid('CSR signature does not verify against its own public key');

  // A mismatch means the client believes it is someone else; signing anyway would hide that bug.
  const uris = requestedUris(csr);
  const stray = uris.find((u) => u !== identityUri);
  if (stray !== undefined) {
    throw new HmError('HM_ERR_IDENTITY', `CSR asks for URI SAN ${stray} but the requested identity is ${identityUri}`);
  }
  return { publicKey, keyType };
}
