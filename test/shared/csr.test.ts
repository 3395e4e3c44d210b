// The hand-encoded CSR (shared/csr.ts) read back by @peculiar/x509, the library the server parses
// CSRs with: it verifies, and says exactly what the agent asked for.
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { test } from 'node:test';
import { generateKeyAndCsr } from '../../shared/csr.js';
import { x509 } from '../../shared/x509.js';

test('a CSR with an identity: P-256 key, CN and one URI SAN, self-signature valid, key matches', async () => {
  const id = 'spiffe://hostmesh.local/service/payments-api';
  const { keyPem, csrPem } = await generateKeyAndCsr(id);
  assert.match(csrPem, /^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE REQUEST-----\n$/);
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  assert.equal(await csr.verify(), true);
  assert.equal(csr.subject, 'CN=payments-api');
  assert.equal((csr.publicKey.algorithm as { namedCurve?: string }).namedCurve, 'P-256');
  const san = csr.extensions.find((e) => e.type === '2.5.29.17');
  assert.ok(san);
  assert.deepEqual(new x509.SubjectAlternativeNameExtension(san.rawData).names.toJSON(), [{ type: 'url', value: id }]);
  assert.equal(csr.extensions.length, 1);
  const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  assert.deepEqual(Buffer.from(csr.publicKey.rawData), fromKey, 'the CSR carries the public half of the returned key');
});

test('a CSR without identity has an empty subject and no extensions, and still verifies', async () => {
  const csr = new x509.Pkcs10CertificateRequest((await generateKeyAndCsr()).csrPem);
  assert.equal(await csr.verify(), true);
  assert.equal(csr.subject, '');
  assert.equal(csr.extensions.length, 0);
});

test('every CSR has a fresh key; a malformed identity is refused', async () => {
  const [a, b] = await Promise.all([generateKeyAndCsr('spiffe://td/host/a'), generateKeyAndCsr('spiffe://td/host/a')]);
  assert.notEqual(a.keyPem, b.keyPem);
  await assert.rejects(generateKeyAndCsr('http://not-spiffe'), { code: 'HM_ERR_IDENTITY' });
});
