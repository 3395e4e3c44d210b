// Key + CSR generation, shared by the agent (its host and service certs) and tests. The key is made
// here and never leaves the caller; only the CSR is sent to the server.
import { webcrypto } from 'node:crypto';
import { x509 } from './x509.js';
import { HmError } from './errors.js';
import { parseSpiffeId } from './identity.js';

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
