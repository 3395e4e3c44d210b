// Key + CSR generation, shared by the agent (its host and service certs) and tests. The key is made
// here and never leaves the caller; only the CSR is sent to the server.
//
// The CSR is encoded here in DER by hand rather than with @peculiar/x509: it is one fixed shape
// (PKCS#10, ECDSA P-256, a CN and one URI SAN), and loading that library with its ASN.1 schema
// stack cost the agent about 13 MB of resident memory for a few hundred bytes of output. The server
// still parses and verifies every CSR with the library (server/ca/csr.ts), and tests check this
// encoder against it.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { HmError } from './errors.js';
import { parseSpiffeId } from './identity.js';

export interface KeyAndCsr {
  /** PKCS#8 "PRIVATE KEY" PEM, the encoding Node's tls accepts. */
  keyPem: string;
  csrPem: string;
}

function pem(der: Buffer, label: string): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// ---- DER, just what a PKCS#10 request needs ----------------------------------------------------

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else if (n < 0x100) len = Buffer.from([0x81, n]);
  else if (n < 0x10000) len = Buffer.from([0x82, n >> 8, n & 0xff]);
  else throw new RangeError('DER value too long for a CSR');
  return Buffer.concat([Buffer.from([tag]), len, content]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items));

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

const OID_CN = '2.5.4.3';
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/** The DER of a PKCS#10 request for `spkiDer`, signed with `privateKey`. */
function certificationRequest(spkiDer: Buffer, privateKey: Parameters<typeof sign>[2], cn?: string, uri?: string): Buffer {
  const subject = cn === undefined ? seq() : seq(set(seq(oid(OID_CN), tlv(0x0c, Buffer.from(cn, 'utf8')))));
  let attributes: Buffer = Buffer.alloc(0);
  if (uri !== undefined) {
    // GeneralNames with one uniformResourceIdentifier ([6] IA5String), not critical.
    const san = seq(tlv(0x86, Buffer.from(uri, 'ascii')));
    const extensions = seq(seq(oid(OID_SUBJECT_ALT_NAME), tlv(0x04, san)));
    attributes = seq(oid(OID_EXTENSION_REQUEST), set(extensions));
  }
  const info = seq(tlv(0x02, Buffer.from([0])), subject, spkiDer, tlv(0xa0, attributes));
  const signature = sign('sha256', info, { key: privateKey as never, dsaEncoding: 'der' });
  return seq(info, seq(oid(OID_ECDSA_WITH_SHA256)), tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
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
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const csr = certificationRequest(spki, createPrivateKey(keyPem), cn, identity);
  return { keyPem: keyPem.endsWith('\n') ? keyPem : `${keyPem}\n`, csrPem: pem(csr, 'CERTIFICATE REQUEST') };
}
