import { createPrivateKey, createPublicKey, webcrypto } from 'node:crypto';
import { toPem } from './pem.js';
import type { CryptoKey, CryptoKeyPair } from './x509.js';

export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Extractable, because the private half has to be written to disk as PKCS#8. */
export async function generateP256(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

/** PKCS#8 "PRIVATE KEY" PEM: the one encoding Node's tls accepts for every key type. */
export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  return toPem(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** Non-extractable on import: once loaded, the CA key never needs to leave WebCrypto again. */
export async function importP256SigningKey(pkcs8Der: Uint8Array): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', pkcs8Der, EC_P256, false, ['sign']);
}

/** SPKI DER of the public half of a PEM private key, to check a key file matches its certificate. */
export function spkiOfPrivateKeyPem(keyPem: string): Buffer {
  return createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
}

/** SPKI DER of a PEM private key that must be ECDSA P-256 (the only kind the server's listener uses). */
export function spkiOfP256KeyPem(keyPem: string): Buffer {
  const key = createPrivateKey(keyPem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new Error('the server key is not an ECDSA P-256 key');
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}
