// Every CA module takes @peculiar/x509 from here: loadX509 installs the Reflect polyfill the library
// needs and sets Node's WebCrypto as its provider, which a plain static import would skip.
import type * as X509 from '@peculiar/x509';
import type { webcrypto } from 'node:crypto';
import { loadX509 } from '../../shared/csr.js';

export type { X509 };
export const x509: typeof X509 = await loadX509();
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
