// Key + CSR generation, shared by the agent (its host and service certs) and tests. The key is made
// here and never leaves the caller; only the CSR is sent to the server.
//
// This is also the one place @peculiar/x509 is loaded (server/ca uses loadX509 too). The library's
// DI container, tsyringe, refuses to load unless a Reflect metadata API exists, and we don't ship a
// polyfill package, so a minimal one is installed below before the library is imported.
import type * as X509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { HmError } from './errors.js';
import { parseSpiffeId } from './identity.js';

type Key = string | symbol;
type ReflectMetadata = {
  defineMetadata(k: unknown, v: unknown, target: object, prop?: Key): void;
  getOwnMetadata(k: unknown, target: object, prop?: Key): unknown;
  hasOwnMetadata(k: unknown, target: object, prop?: Key): boolean;
  getMetadata(k: unknown, target: object, prop?: Key): unknown;
  hasMetadata(k: unknown, target: object, prop?: Key): boolean;
  metadata(k: unknown, v: unknown): (target: object, prop?: Key) => void;
};

/** Just the reflect-metadata surface tsyringe calls; a real polyfill, if loaded first, is left alone. */
function installReflectMetadata(): void {
  const R = Reflect as unknown as Partial<ReflectMetadata>;
  if (typeof R.getMetadata === 'function') return;
  const store = new WeakMap<object, Map<Key | undefined, Map<unknown, unknown>>>();
  const table = (target: object, prop: Key | undefined, create: boolean): Map<unknown, unknown> | undefined => {
    let byProp = store.get(target);
    if (!byProp) {
      if (!create) return undefined;
      store.set(target, (byProp = new Map()));
    }
    let t = byProp.get(prop);
    if (!t && create) byProp.set(prop, (t = new Map()));
    return t;
  };
  const api: ReflectMetadata = {
    defineMetadata: (k, v, target, prop) => void table(target, prop, true)?.set(k, v),
    getOwnMetadata: (k, target, prop) => table(target, prop, false)?.get(k),
    hasOwnMetadata: (k, target, prop) => table(target, prop, false)?.has(k) ?? false,
    getMetadata: (k, target, prop) => {
      for (let o: object | null = target; o; o = Object.getPrototypeOf(o) as object | null) {
        const t = table(o, prop, false);
        if (t?.has(k)) return t.get(k);
      }
      return undefined;
    },
    hasMetadata: (k, target, prop) => {
      for (let o: object | null = target; o; o = Object.getPrototypeOf(o) as object | null) {
        if (table(o, prop, false)?.has(k)) return true;
      }
      return false;
    },
    metadata: (k, v) => (target, prop) => api.defineMetadata(k, v, target, prop),
  };
  Object.assign(Reflect, api);
}

let loading: Promise<typeof X509> | undefined;

/**
 * @peculiar/x509 with the polyfill in place and Node's WebCrypto as its provider. A dynamic import
 * because static imports are evaluated before this module's own code could install the polyfill.
 */
export function loadX509(): Promise<typeof X509> {
  loading ??= (async () => {
    installReflectMetadata();
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto);
    return x509;
  })();
  return loading;
}

export interface KeyAndCsr {
  /** PKCS#8 "PRIVATE KEY" PEM, the encoding Node's tls accepts. */
  keyPem: string;
  csrPem: string;
}

function pem(der: ArrayBuffer, label: string): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * A fresh ECDSA P-256 key and a CSR for it. With `identity`, the CSR names it in its URI SAN and CN
 * so the server can refuse a client that asks for a different identity than it believes it has.
 */
export async function generateKeyAndCsr(identity?: string): Promise<KeyAndCsr> {
  let cn: string | undefined;
  if (identity !== undefined) {
    const id = parseSpiffeId(identity);
    if (!id) throw new HmError('HM_ERR_IDENTITY', `malformed identity "${identity}"`);
    cn = id.name;
  }
  const x509 = await loadX509();
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    ...(cn === undefined ? {} : { name: [{ CN: [cn] }] }),
    extensions:
      identity === undefined ? [] : [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identity }], false)],
  });
  return {
    keyPem: pem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY'),
    csrPem: csr.toString('pem') + '\n',
  };
}
