// CA modules take @peculiar/x509 from shared/x509.ts, which loads it correctly (polyfill, provider).
export { x509, type CryptoKey, type CryptoKeyPair } from '../../shared/x509.js';
export type * as X509 from '@peculiar/x509';
