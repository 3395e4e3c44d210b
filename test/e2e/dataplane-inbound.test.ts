// The inbound listener refuses every client that is not a mesh workload with a valid certificate:
// plain TCP, no client cert, a cert from another CA (even one naming a mesh identity), an expired
// cert, a cert for another trust domain, a cert without clientAuth, a cert with two SPIFFE IDs.
// A client with a valid mesh cert made the same way gets through (so the refusals are the checks
// at work, not a listener that refuses everyone). A valid mesh peer that opens and resets streams
// faster than the budget is told to go away. Addresses 127.0.2.10–127.0.2.19 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { CertificateAuthority } from '../../server/ca/index.js';
import { generateKeyAndCsr } from '../../shared/csr.js';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { createJoinToken, startTestAgent, waitReady, type TestAgent } from '../helpers/agent.js';
import { Cleanup, apply, makeLeafCert, probe, startHeaderEcho, urisOf, type ProbeResult } from '../helpers/traffic.js';
import { sampleSum, scrape } from '../helpers/prom.js';
import { FrameReader, FrameType, MUX_ALPN, header, resetFrame } from '../../agent/proxy/mux/frames.js';
import { CHURN_BURST } from '../../agent/proxy/mux/session.js';

const TD = 'hostmesh.local';
const B = '127.0.2.11'; // runs web
const INBOUND = 15443;
const SNI = `web.${TD}`;
const API_ID = `spiffe://${TD}/service/api`;
const REQUEST = `GET /probe HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n`;

describe('data plane: the inbound listener refuses what is not a valid mesh workload', { timeout: 60_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let b: TestAgent;
  let rootCertPem: string;
  let rootKeyPem: string;

  /** A TLS probe of B's inbound with the given client cert and key (none when omitted). */
  const tlsProbe = (client: { certPem?: string; keyPem?: string } = {}): Promise<ProbeResult> => {
    const opts: tls.ConnectionOptions = {
      servername: SNI,
      ca: s.caPem,
      // We judge the server's certificate ourselves below; what is under test is the client side.
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      ...(client.certPem ? { cert: client.certPem, key: client.keyPem } : {}),
    };
    return probe(B, INBOUND, opts, REQUEST, 5000);
  };

  /** Refused: the TCP connection was made, no HTTP answer came back, and the connection closed. */
  const assertRefused = (what: string, p: ProbeResult): void => {
    const seen = `secureConnected=${p.secureConnected} error=${p.error} received=${JSON.stringify(p.received.slice(0, 120))}`;
    assert.equal(p.tcpConnected, true, `${what}: B's inbound listener accepts TCP at all (${seen})`);
    assert.ok(!p.received.includes('HTTP/'), `${what}: no HTTP answer (${seen})`);
    assert.ok(!p.received.includes('"name"'), `${what}: nothing from the service (${seen})`);
    assert.equal(p.closed, true, `${what}: the connection is closed, not left open (${seen})`);
  };

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    await apply(s, [
      // Allow by default: a refusal below can only come from the certificate checks, not policy.
      { kind: 'Mesh', name: 'default', spec: { defaultAccess: 'allow', certTTL: '1h' } },
      { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 18080 } },
    ]);
    const web = await startHeaderEcho(B, 18080, 'web-b');
    bag.add(() => web.close());
    b = await startTestAgent(s, { name: 'dp-inbound-b', ip: B, token: await createJoinToken(s), services: [{ name: 'web', port: 18080, host: B, protocol: 'http' }] });
    bag.add(() => b.cleanup());
    await waitReady(b);
    rootCertPem = fs.readFileSync(path.join(s.dataDir, 'ca', 'root.crt.pem'), 'utf8');
    rootKeyPem = fs.readFileSync(path.join(s.dataDir, 'ca', 'root.key.pem'), 'utf8');
  }, { timeout: 30_000 });

  after(() => bag.run());

  test('control: a valid mesh client cert gets through, and the server presents web’s cert for its SNI', { timeout: 15_000 }, async () => {
    const good = await makeLeafCert({ issuerCertPem: rootCertPem, issuerKeyPem: rootKeyPem, uris: [API_ID], commonName: 'api' });
    const p = await tlsProbe(good);
    assert.equal(p.secureConnected, true, `handshake with a valid cert (${p.error})\n${b.output().slice(-1500)}`);
    assert.deepEqual(urisOf(p.peerCert), [`spiffe://${TD}/service/web`], 'B answers SNI web.<td> with the web service certificate');
    assert.match(p.received, /^HTTP\/1\.1 200 /, `an HTTP answer from the service: ${JSON.stringify(p.received.slice(0, 200))}`);
    const body = JSON.parse(p.received.slice(p.received.indexOf('\r\n\r\n') + 4)) as { name: string; headers: Record<string, string> };
    assert.equal(body.name, 'web-b');
    assert.equal(body.headers['x-hostmesh-source'], API_ID, 'the caller identity comes from the verified certificate');
  });

  test('a plain TCP client is refused', { timeout: 10_000 }, async () => {
    assertRefused('plain TCP', await probe(B, INBOUND, null, REQUEST, 5000));
  });

  test('a TLS client without a certificate is refused', { timeout: 10_000 }, async () => {
    assertRefused('no client cert', await tlsProbe());
  });

  test('a client certificate from another CA is refused, even one naming a mesh identity', { timeout: 15_000 }, async () => {
    // An impostor CA for the same trust domain name: only the root it chains to differs.
    const dir = tempDir('hostmesh-other-ca-');
    try {
      const other = await CertificateAuthority.loadOrCreate(dir, TD);
      assert.notEqual(other.fingerprint, (await s.api('GET', '/v1/ca/root', undefined, { token: null })).body.fingerprint);
      const { keyPem, csrPem } = await generateKeyAndCsr(API_ID);
      const issued = await other.signCsr(csrPem, { identity: API_ID, ttlMs: 3_600_000 });
      assertRefused('other CA, same identity', await tlsProbe({ certPem: issued.chainPem, keyPem }));
      // And an honest other mesh (trust domain other.td) is refused too.
      const dir2 = tempDir('hostmesh-other-td-');
      try {
        const foreign = await CertificateAuthority.loadOrCreate(dir2, 'other.td');
        const k2 = await generateKeyAndCsr('spiffe://other.td/service/api');
        const issued2 = await foreign.signCsr(k2.csrPem, { identity: 'spiffe://other.td/service/api', ttlMs: 3_600_000 });
        assertRefused('other CA, other trust domain', await tlsProbe({ certPem: issued2.chainPem, keyPem: k2.keyPem }));
      } finally {
        fs.rmSync(dir2, { recursive: true, force: true });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an expired certificate signed by the mesh root is refused', { timeout: 10_000 }, async () => {
    const now = Date.now();
    const expired = await makeLeafCert({
      issuerCertPem: rootCertPem,
      issuerKeyPem: rootKeyPem,
      uris: [API_ID],
      notBefore: new Date(now - 2 * 3_600_000),
      notAfter: new Date(now - 3_600_000),
    });
    assertRefused('expired', await tlsProbe(expired));
    const notYet = await makeLeafCert({
      issuerCertPem: rootCertPem,
      issuerKeyPem: rootKeyPem,
      uris: [API_ID],
      notBefore: new Date(now + 3_600_000),
      notAfter: new Date(now + 2 * 3_600_000),
    });
    assertRefused('not yet valid', await tlsProbe(notYet));
  });

  test('a certificate for another trust domain, signed by the mesh root, is refused', { timeout: 10_000 }, async () => {
    const evil = await makeLeafCert({ issuerCertPem: rootCertPem, issuerKeyPem: rootKeyPem, uris: ['spiffe://evil.td/service/api'] });
    assertRefused('trust domain evil.td', await tlsProbe(evil));
  });

  test('a mesh-signed cert without clientAuth, with two SPIFFE IDs, or with none is refused', { timeout: 15_000 }, async () => {
    const serverOnly = await makeLeafCert({ issuerCertPem: rootCertPem, issuerKeyPem: rootKeyPem, uris: [API_ID], usages: ['serverAuth'] });
    assertRefused('serverAuth only', await tlsProbe(serverOnly));
    const two = await makeLeafCert({ issuerCertPem: rootCertPem, issuerKeyPem: rootKeyPem, uris: [API_ID, `spiffe://${TD}/service/admin`] });
    assertRefused('two SPIFFE IDs', await tlsProbe(two));
    const none = await makeLeafCert({ issuerCertPem: rootCertPem, issuerKeyPem: rootKeyPem, uris: [], dnsNames: ['api.hostmesh.local'] });
    assertRefused('no SPIFFE ID', await tlsProbe(none));
  });

  test('rapid reset: a mesh peer that opens and resets streams past the budget gets GoAway, is counted, and others are still served', { timeout: 20_000 }, async () => {
    const good = await makeLeafCert({ issuerCertPem: rootCertPem, issuerKeyPem: rootKeyPem, uris: [API_ID], commonName: 'api' });
    const socket = tls.connect({ host: B, port: INBOUND, servername: SNI, ca: s.caPem, rejectUnauthorized: false, ALPNProtocols: [MUX_ALPN], cert: good.certPem, key: good.keyPem });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    assert.equal(socket.alpnProtocol, MUX_ALPN, 'the inbound listener speaks the multiplexer');
    const seen: number[] = [];
    const reader = new FrameReader((type) => seen.push(type));
    socket.on('data', (c: Buffer) => reader.push(c));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const n = CHURN_BURST + 300;
    const out: Buffer[] = [];
    for (let id = 1; id <= n; id++) out.push(header(FrameType.Open, id, 0), resetFrame(id, 'CANCEL'));
    socket.end(Buffer.concat(out));
    await closed;
    assert.ok(seen.includes(FrameType.GoAway), `GoAway among ${seen.length} frames`);
    const accepted = seen.filter((t) => t === FrameType.Accepted).length;
    assert.ok(accepted < CHURN_BURST + 100, `no more than the budget was taken (${accepted} of ${n})`);
    const m = await scrape(b.adminUrl);
    assert.equal(sampleSum(m, 'hostmesh_mux_churn_goaways_total', { service: 'web', source_service: 'api' }), 1);
    assert.match(b.output(), /reset too many streams before they were answered/);
  });

  test('after all that, the listener still serves valid clients', { timeout: 10_000 }, async () => {
    const good = await makeLeafCert({ issuerCertPem: rootCertPem, issuerKeyPem: rootKeyPem, uris: [API_ID] });
    const p = await tlsProbe(good);
    assert.match(p.received, /^HTTP\/1\.1 200 /, `still serving: ${JSON.stringify(p.received.slice(0, 120))} (${p.error})`);
  });
});
