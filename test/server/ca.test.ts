import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { HmError, type ErrorCode } from '../../shared/errors.js';
import { generateKeyAndCsr } from '../../shared/csr.js';
import { x509 as loadedX509 } from '../../shared/x509.js';
import {
  CertificateAuthority,
  ensureServerCert,
  fingerprintOfPem,
  ROOT_CERT_FILE,
  ROOT_KEY_FILE,
  SERVER_CERT_FILE,
  SERVER_KEY_FILE,
} from '../../server/ca/index.js';

const TD = 'td';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const OID_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

let tmp: string;
let caDir: string;
let ca: CertificateAuthority;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostmesh-ca-test-'));
  caDir = path.join(tmp, 'ca');
  ca = await CertificateAuthority.loadOrCreate(caDir, TD);
});

after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const mode = (file: string): number => fs.statSync(file).mode & 0o777;

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof HmError, `expected HmError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  });
}

/** A copy of the CA dir, so destructive tests don't disturb the shared CA. */
function copyCaDir(name: string): string {
  const dir = path.join(tmp, name);
  fs.cpSync(caDir, dir, { recursive: true });
  return dir;
}

type CsrKeyAlg =
  | { name: 'ECDSA'; namedCurve: 'P-256' | 'P-384' | 'P-521' }
  | { name: 'RSASSA-PKCS1-v1_5'; modulusLength: number };

/** A CSR for an arbitrary key type, which generateKeyAndCsr (P-256 only) cannot make. */
async function csrWithKey(alg: CsrKeyAlg, uri?: string): Promise<string> {
  const x509 = loadedX509;
  const keys =
    alg.name === 'ECDSA'
      ? await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])
      : await webcrypto.subtle.generateKey(
          { ...alg, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
          true,
          ['sign', 'verify'],
        );
  const hash = alg.name === 'ECDSA' && alg.namedCurve !== 'P-256' ? 'SHA-384' : 'SHA-256';
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    name: [{ CN: ['x'] }],
    signingAlgorithm: { name: alg.name, hash },
    extensions: uri ? [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: uri }])] : [],
  });
  return csr.toString('pem');
}

async function leafFor(identity: string, dnsNames?: string[]): Promise<{ keyPem: string; chainPem: string; certPem: string }> {
  const { keyPem, csrPem } = await generateKeyAndCsr(identity);
  const issued = await ca.signCsr(csrPem, { identity, ttlMs: HOUR, ...(dnsNames ? { dnsNames } : {}) });
  return { keyPem, chainPem: issued.chainPem, certPem: issued.certPem };
}

test('root is created with a 0600 key in a 0700 dir and reused on the next load', async () => {
  assert.equal(mode(caDir), 0o700);
  assert.equal(mode(path.join(caDir, ROOT_KEY_FILE)), 0o600);
  const keyPem = fs.readFileSync(path.join(caDir, ROOT_KEY_FILE), 'utf8');
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);

  const again = await CertificateAuthority.loadOrCreate(caDir, TD);
  assert.equal(again.fingerprint, ca.fingerprint);
  assert.equal(again.rootPem, ca.rootPem);
  assert.equal(fs.readFileSync(path.join(caDir, ROOT_KEY_FILE), 'utf8'), keyPem);
  assert.equal(again.trustDomain, TD);
});

test('root is a P-256 pathlen-0 CA for 10 years recording the trust domain', () => {
  const root = new X509Certificate(ca.rootPem);
  assert.equal(root.ca, true);
  assert.equal(root.subject, `CN=hostmesh root CA ${TD}`);
  assert.equal(root.issuer, root.subject);
  assert.equal(root.subjectAltName, `URI:spiffe://${TD}`);
  assert.equal(root.publicKey.asymmetricKeyType, 'ec');
  assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.ok(root.verify(root.publicKey));
  const years = (new Date(root.validTo).getTime() - Date.now()) / (365.25 * DAY);
  assert.ok(years > 9.9 && years <= 10.01, `root lifetime ${years} years`);
  assert.equal(ca.notAfter.getTime(), new Date(root.validTo).getTime());
});

test('fingerprint is sha256 over the root DER', () => {
  const der = new X509Certificate(ca.rootPem).raw;
  const expected = `sha256:${createHash('sha256').update(der).digest('hex')}`;
  assert.equal(ca.fingerprint, expected);
  assert.equal(fingerprintOfPem(ca.rootPem), expected);
  assert.match(ca.fingerprint, /^sha256:[0-9a-f]{64}$/);
});

test('a signed leaf verifies against the root and carries exactly the requested identity', async () => {
  const { csrPem } = await generateKeyAndCsr('spiffe://td/service/web');
  const before = Date.now();
  const issued = await ca.signCsr(csrPem, { identity: 'spiffe://td/service/web', ttlMs: 2 * HOUR, dnsNames: ['web.td'] });
  const leaf = new X509Certificate(issued.certPem);
  const root = new X509Certificate(ca.rootPem);

  assert.ok(leaf.checkIssued(root));
  assert.ok(leaf.verify(root.publicKey));
  assert.equal(leaf.ca, false);
  assert.equal(leaf.subjectAltName, 'URI:spiffe://td/service/web, DNS:web.td');
  assert.deepEqual([...(leaf.keyUsage ?? [])].sort(), [OID_SERVER_AUTH, OID_CLIENT_AUTH].sort());
  assert.equal(leaf.subject, 'CN=web');
  assert.equal(issued.spiffeId, 'spiffe://td/service/web');
  assert.equal(issued.serial, leaf.serialNumber.toLowerCase());
  assert.match(issued.serial, /^[4-7][0-9a-f]{31}$/);
  // The chain is the leaf followed by the root, nothing else.
  assert.equal(issued.chainPem, issued.certPem + ca.rootPem);

  const skew = 60_000;
  assert.ok(Math.abs(issued.notBefore.getTime() - (before - skew)) < 5_000);
  assert.ok(Math.abs(issued.notAfter.getTime() - (before + 2 * HOUR)) < 5_000);
  assert.equal(new Date(leaf.validTo).getTime(), issued.notAfter.getTime());
});

test('leaf critical extensions: CA:false, digitalSignature only for EC keys', async () => {
  const x509 = loadedX509;
  const { certPem } = await leafFor('spiffe://td/host/h1');
  const cert = new x509.X509Certificate(certPem);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  assert.equal(bc?.ca, false);
  assert.equal(bc?.critical, true);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  assert.equal(ku?.critical, true);
  assert.equal(ku?.usages, x509.KeyUsageFlags.digitalSignature);
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
  const rootSki = new x509.X509Certificate(ca.rootPem).getExtension(x509.SubjectKeyIdentifierExtension);
  assert.ok(aki?.keyId && aki.keyId === rootSki?.keyId);
  assert.ok(cert.getExtension(x509.SubjectKeyIdentifierExtension));
});

test('RSA-2048 and P-384 CSRs are accepted; RSA leaves also get keyEncipherment', async () => {
  const x509 = loadedX509;
  const rsa = await ca.signCsr(await csrWithKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048 }), {
    identity: 'spiffe://td/service/rsa',
    ttlMs: HOUR,
  });
  const ku = new x509.X509Certificate(rsa.certPem).getExtension(x509.KeyUsagesExtension);
  assert.equal(ku?.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);

  const p384 = await ca.signCsr(await csrWithKey({ name: 'ECDSA', namedCurve: 'P-384' }), {
    identity: { trustDomain: TD, kind: 'service', name: 'p384' },
    ttlMs: HOUR,
  });
  assert.equal(p384.spiffeId, 'spiffe://td/service/p384');
  assert.ok(new X509Certificate(p384.certPem).verify(new X509Certificate(ca.rootPem).publicKey));
});

test('node:tls mTLS handshake succeeds between two leaves trusting only the root', async () => {
  const server = await leafFor('spiffe://td/service/web', ['web.td']);
  const client = await leafFor('spiffe://td/host/h1');
  const result = await handshake(server, client, 'web.td');
  assert.equal(result.clientAuthorized, true, result.clientError);
  assert.equal(result.serverAuthorized, true, result.serverError);
  assert.equal(result.serverSawClient, 'URI:spiffe://td/host/h1');
  assert.equal(result.clientSawServer, 'URI:spiffe://td/service/web, DNS:web.td');
});

test('node:tls refuses a client cert from a different CA', async () => {
  const otherCa = await CertificateAuthority.loadOrCreate(path.join(tmp, 'other-ca'), TD);
  const server = await leafFor('spiffe://td/service/web', ['web.td']);
  const { keyPem, csrPem } = await generateKeyAndCsr('spiffe://td/host/h1');
  const foreign = await otherCa.signCsr(csrPem, { identity: 'spiffe://td/host/h1', ttlMs: HOUR });
  const result = await handshake(server, { keyPem, chainPem: foreign.chainPem }, 'web.td');
  assert.equal(result.serverAuthorized, false);
});

interface HandshakeResult {
  clientAuthorized: boolean;
  clientError?: string;
  serverAuthorized: boolean;
  serverError?: string;
  serverSawClient?: string;
  clientSawServer?: string;
}

async function handshake(
  serverCert: { keyPem: string; chainPem: string },
  clientCert: { keyPem: string; chainPem: string },
  servername: string,
): Promise<HandshakeResult> {
  const result: HandshakeResult = { clientAuthorized: false, serverAuthorized: false };
  const server = tls.createServer({
    key: serverCert.keyPem,
    cert: serverCert.chainPem,
    ca: [ca.rootPem],
    requestCert: true,
    rejectUnauthorized: true,
  });
  const serverDone = new Promise<void>((resolve) => {
    server.on('secureConnection', (sock) => {
      result.serverAuthorized = sock.authorized;
      result.serverSawClient = sock.getPeerCertificate().subjectaltname;
      sock.end('ok');
      resolve();
    });
    server.on('tlsClientError', (err) => {
      result.serverError = err.message;
      resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const clientDone = new Promise<void>((resolve) => {
      const sock = tls.connect({
        host: '127.0.0.1',
        port,
        servername,
        key: clientCert.keyPem,
        cert: clientCert.chainPem,
        ca: [ca.rootPem],
        rejectUnauthorized: true,
      });
      sock.on('secureConnect', () => {
        result.clientAuthorized = sock.authorized;
        result.clientSawServer = sock.getPeerCertificate().subjectaltname;
      });
      sock.on('data', () => sock.end());
      sock.on('error', (err) => {
        result.clientError ??= err.message;
        resolve();
      });
      sock.on('close', () => resolve());
    });
    await Promise.all([serverDone, clientDone]);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return result;
}

test('malformed or foreign identities are refused with HM_ERR_IDENTITY', async () => {
  const { csrPem } = await generateKeyAndCsr();
  for (const identity of [
    'spiffe://other.td/service/x',
    'spiffe://td/service/Bad_Name',
    'spiffe://td/foo/x',
    'http://x',
    'spiffe://td/service/x/extra',
    'spiffe://td/host/h1/',
    '',
  ]) {
    await rejectsWith(ca.signCsr(csrPem, { identity, ttlMs: HOUR }), 'HM_ERR_IDENTITY');
  }
  await rejectsWith(
    ca.signCsr(csrPem, { identity: { trustDomain: 'other.td', kind: 'host', name: 'h' }, ttlMs: HOUR }),
    'HM_ERR_IDENTITY',
  );
  await rejectsWith(
    ca.signCsr(csrPem, { identity: { trustDomain: TD, kind: 'host', name: 'UPPER' }, ttlMs: HOUR }),
    'HM_ERR_IDENTITY',
  );
});

test('a CSR with no SAN is signed for the requested identity', async () => {
  const { csrPem } = await generateKeyAndCsr();
  const issued = await ca.signCsr(csrPem, { identity: 'spiffe://td/host/bare', ttlMs: HOUR });
  assert.equal(new X509Certificate(issued.certPem).subjectAltName, 'URI:spiffe://td/host/bare');
});

test('a CSR whose own URI SAN differs from the requested identity is refused', async () => {
  const { csrPem } = await generateKeyAndCsr('spiffe://td/service/other');
  await rejectsWith(
    ca.signCsr(csrPem, { identity: 'spiffe://td/service/web', ttlMs: HOUR }),
    'HM_ERR_IDENTITY',
    /spiffe:\/\/td\/service\/other/,
  );
});

test('a CSR with a tampered signature is refused with HM_ERR_CSR_INVALID', async () => {
  const { csrPem } = await generateKeyAndCsr('spiffe://td/service/web');
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await rejectsWith(ca.signCsr(tampered, { identity: 'spiffe://td/service/web', ttlMs: HOUR }), 'HM_ERR_CSR_INVALID', /signature/);
});

test('a CSR whose signed content was altered is refused', async () => {
  const { csrPem } = await generateKeyAndCsr('spiffe://td/service/web');
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const at = der.indexOf(Buffer.from('service/web'));
  assert.ok(at > 0);
  der.write('service/wex', at); // same length, so the DER stays well-formed
  const altered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  await rejectsWith(ca.signCsr(altered, { identity: 'spiffe://td/service/wex', ttlMs: HOUR }), 'HM_ERR_CSR_INVALID');
});

test('weak or unsupported keys are refused with a reason', async () => {
  const rsa1024 = await csrWithKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 1024 });
  await rejectsWith(ca.signCsr(rsa1024, { identity: 'spiffe://td/service/web', ttlMs: HOUR }), 'HM_ERR_CSR_INVALID', /1024-bit RSA/);
  const p521 = await csrWithKey({ name: 'ECDSA', namedCurve: 'P-521' });
  await rejectsWith(ca.signCsr(p521, { identity: 'spiffe://td/service/web', ttlMs: HOUR }), 'HM_ERR_CSR_INVALID', /secp521r1/);
});

test('garbage CSRs are refused with HM_ERR_CSR_INVALID', async () => {
  const opts = { identity: 'spiffe://td/service/web', ttlMs: HOUR };
  await rejectsWith(ca.signCsr('', opts), 'HM_ERR_CSR_INVALID');
  await rejectsWith(ca.signCsr('not a csr', opts), 'HM_ERR_CSR_INVALID');
  await rejectsWith(ca.signCsr(ca.rootPem, opts), 'HM_ERR_CSR_INVALID');
  await rejectsWith(
    ca.signCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', opts),
    'HM_ERR_CSR_INVALID',
  );
  await rejectsWith(ca.signCsr('x'.repeat(100_000), opts), 'HM_ERR_CSR_INVALID');
});

test('ttl outside 60 s .. 90 days and bad DNS names are HM_ERR_VALIDATION', async () => {
  const { csrPem } = await generateKeyAndCsr();
  const identity = 'spiffe://td/host/h1';
  await rejectsWith(ca.signCsr(csrPem, { identity, ttlMs: 59_000 }), 'HM_ERR_VALIDATION');
  await rejectsWith(ca.signCsr(csrPem, { identity, ttlMs: 91 * DAY }), 'HM_ERR_VALIDATION');
  await rejectsWith(ca.signCsr(csrPem, { identity, ttlMs: Number.NaN }), 'HM_ERR_VALIDATION');
  await rejectsWith(ca.signCsr(csrPem, { identity, ttlMs: HOUR, dnsNames: ['*.td'] }), 'HM_ERR_VALIDATION');
  await rejectsWith(ca.signCsr(csrPem, { identity, ttlMs: HOUR, dnsNames: ['a b'] }), 'HM_ERR_VALIDATION');
  const edge = await ca.signCsr(csrPem, { identity, ttlMs: 90 * DAY });
  assert.ok(edge.notAfter.getTime() - Date.now() > 89 * DAY);
});

test('reloading with another trust domain fails with HM_ERR_STARTUP naming the recorded one', async () => {
  await rejectsWith(
    CertificateAuthority.loadOrCreate(caDir, 'other.td'),
    'HM_ERR_STARTUP',
    /created for trust domain td; start with --trust-domain td/,
  );
});

test('corrupt or half-present root files fail with HM_ERR_STARTUP naming the file', async () => {
  const badCert = copyCaDir('bad-cert');
  fs.writeFileSync(path.join(badCert, ROOT_CERT_FILE), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  await rejectsWith(CertificateAuthority.loadOrCreate(badCert, TD), 'HM_ERR_STARTUP', new RegExp(ROOT_CERT_FILE));

  const badKey = copyCaDir('bad-key');
  fs.writeFileSync(path.join(badKey, ROOT_KEY_FILE), 'garbage');
  await rejectsWith(CertificateAuthority.loadOrCreate(badKey, TD), 'HM_ERR_STARTUP', new RegExp(ROOT_KEY_FILE));

  const swapped = copyCaDir('swapped-key');
  const otherDir = path.join(tmp, 'other-ca-for-swap');
  await CertificateAuthority.loadOrCreate(otherDir, TD);
  fs.copyFileSync(path.join(otherDir, ROOT_KEY_FILE), path.join(swapped, ROOT_KEY_FILE));
  await rejectsWith(CertificateAuthority.loadOrCreate(swapped, TD), 'HM_ERR_STARTUP', /does not belong/);

  const noCert = copyCaDir('no-cert');
  fs.rmSync(path.join(noCert, ROOT_CERT_FILE));
  await rejectsWith(CertificateAuthority.loadOrCreate(noCert, TD), 'HM_ERR_STARTUP', /missing/);
  // Refusing must not have replaced the surviving key.
  assert.equal(
    fs.readFileSync(path.join(noCert, ROOT_KEY_FILE), 'utf8'),
    fs.readFileSync(path.join(caDir, ROOT_KEY_FILE), 'utf8'),
  );
});

test('a root key with loose permissions is tightened to 0600 on load', async () => {
  const dir = copyCaDir('loose-key');
  fs.chmodSync(path.join(dir, ROOT_KEY_FILE), 0o644);
  const loaded = await CertificateAuthority.loadOrCreate(dir, TD);
  assert.equal(loaded.fingerprint, ca.fingerprint);
  assert.equal(mode(path.join(dir, ROOT_KEY_FILE)), 0o600);
});

test('an invalid trust domain argument is a config error', async () => {
  await rejectsWith(CertificateAuthority.loadOrCreate(path.join(tmp, 'bad-td'), 'Bad_TD'), 'HM_ERR_CONFIG');
});

test('issueServerCert makes a serverAuth cert with DNS and IP SANs', async () => {
  const issued = await ca.issueServerCert({ dnsNames: ['hostmesh.example'], ipAddresses: ['127.0.0.1', '::1'], ttlMs: 30 * DAY });
  const leaf = new X509Certificate(issued.certPem);
  assert.ok(leaf.verify(new X509Certificate(ca.rootPem).publicKey));
  assert.equal(leaf.subjectAltName, 'DNS:hostmesh.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
  assert.deepEqual(leaf.keyUsage, [OID_SERVER_AUTH]);
  assert.ok(leaf.checkPrivateKey(createPrivateKey(issued.keyPem)));
  assert.match(issued.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  await rejectsWith(ca.issueServerCert({ dnsNames: [], ipAddresses: [], ttlMs: DAY }), 'HM_ERR_VALIDATION');
  await rejectsWith(ca.issueServerCert({ dnsNames: [], ipAddresses: ['300.1.1.1'], ttlMs: DAY }), 'HM_ERR_VALIDATION');
});

test('ensureServerCert writes 0600 files, reuses them, and re-issues when a SAN is added', async () => {
  const dir = path.join(tmp, 'server-tls');
  const names = { dnsNames: ['hostmesh.example'], ipAddresses: ['127.0.0.1'] };
  const first = await ensureServerCert(ca, dir, names);
  assert.equal(first.reused, false);
  assert.equal(mode(path.join(dir, SERVER_KEY_FILE)), 0o600);
  assert.equal(mode(path.join(dir, SERVER_CERT_FILE)), 0o600);
  assert.equal(fs.readFileSync(path.join(dir, SERVER_CERT_FILE), 'utf8'), first.certPem);
  assert.equal(fs.readFileSync(path.join(dir, SERVER_KEY_FILE), 'utf8'), first.keyPem);
  const leaf = new X509Certificate(first.certPem);
  const lifetimeDays = (new Date(leaf.validTo).getTime() - Date.now()) / DAY;
  assert.ok(lifetimeDays > 364 && lifetimeDays <= 365, `server cert lifetime ${lifetimeDays} days`);
  // The file holds leaf then root, so a client pinning the root fingerprint sees the root.
  assert.ok(first.certPem.endsWith(ca.rootPem));

  const second = await ensureServerCert(ca, dir, names);
  assert.equal(second.reused, true);
  assert.equal(second.certPem, first.certPem);
  assert.equal(second.keyPem, first.keyPem);

  // A subset of the existing SANs is still satisfied; IPv6 spelled differently likewise.
  const subset = await ensureServerCert(ca, dir, { dnsNames: ['HOSTMESH.example'], ipAddresses: [] });
  assert.equal(subset.reused, true);

  const third = await ensureServerCert(ca, dir, { dnsNames: ['hostmesh.example', 'mesh.internal'], ipAddresses: ['127.0.0.1'] });
  assert.equal(third.reused, false);
  assert.notEqual(third.certPem, first.certPem);
  // Same key: install commands pin the server's public key, and a re-issue must not break them.
  assert.equal(third.keyPem, first.keyPem);
  assert.equal(new X509Certificate(third.certPem).subjectAltName, 'DNS:hostmesh.example, DNS:mesh.internal, IP Address:127.0.0.1');
  assert.equal(fs.readFileSync(path.join(dir, SERVER_CERT_FILE), 'utf8'), third.certPem);
});

test('ensureServerCert re-issues a cert that expires within 30 days, is foreign, or mismatches its key', async () => {
  const dir = path.join(tmp, 'server-tls-2');
  fs.mkdirSync(dir, { mode: 0o700 });
  const names = { dnsNames: ['hostmesh.example'], ipAddresses: ['::1'] };
  const write = (certPem: string, keyPem: string): void => {
    fs.writeFileSync(path.join(dir, SERVER_CERT_FILE), certPem, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, SERVER_KEY_FILE), keyPem, { mode: 0o600 });
  };

  const shortLived = await ca.issueServerCert({ ...names, ttlMs: 10 * DAY });
  write(shortLived.chainPem, shortLived.keyPem);
  const renewed = await ensureServerCert(ca, dir, names);
  assert.equal(renewed.reused, false);
  assert.ok(renewed.notAfter.getTime() - Date.now() > 300 * DAY);
  assert.equal(renewed.keyPem, shortLived.keyPem, 'a renewal keeps the key');

  const otherCa = await CertificateAuthority.loadOrCreate(path.join(tmp, 'other-ca-2'), TD);
  const foreign = await otherCa.issueServerCert({ ...names, ttlMs: 365 * DAY });
  write(foreign.chainPem, foreign.keyPem);
  const replaced = await ensureServerCert(ca, dir, names);
  assert.equal(replaced.reused, false);
  assert.ok(new X509Certificate(replaced.certPem).checkIssued(new X509Certificate(ca.rootPem)));

  const good = await ca.issueServerCert({ ...names, ttlMs: 365 * DAY });
  write(good.chainPem, shortLived.keyPem);
  assert.equal((await ensureServerCert(ca, dir, names)).reused, false);

  const ok = await ensureServerCert(ca, dir, { dnsNames: [], ipAddresses: ['0:0:0:0:0:0:0:1'] });
  assert.equal(ok.reused, true);
});
