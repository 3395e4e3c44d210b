// The one place @peculiar/x509 is loaded. Its DI container (tsyringe) needs the Reflect metadata
// API at load time, so the polyfill is imported first (ES modules evaluate imports in order), and
// Node's WebCrypto is set as the provider before anyone can call the library.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto);

export { x509 };
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
