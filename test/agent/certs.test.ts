// Certificate renewal: missing certs are requested on connect, held ones at 2/3 of their life (on
// an injectable clock), refusals back off instead of looping, and new certs are swapped in live.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CertManager, renewAt } from '../../agent/certs/manager.js';
import { parseCert } from '../../agent/certs/pem.js';
import { TrustBundle } from '../../agent/certs/trust.js';
import { StateStore } from '../../agent/state/store.js';
import { CertificateAuthority } from '../../server/ca/index.js';
import { generateKeyAndCsr } from '../../shared/csr.js';
import type { CertMsg, CsrMsg } from '../../shared/protocol.js';
import { FakeClock } from './fake-clock.js';
import { tempDir, testLog, TRUST_DOMAIN, until } from './fake-server.js';

const HOUR = 3600_000;
let dir: string;
let ca: CertificateAuthority;

before(async () => {
  dir = tempDir();
  ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'), TRUST_DOMAIN);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function setup(name: string, opts: { random?: () => number } = {}) {
  const store = new StateStore(path.join(dir, name));
  await store.init();
  const host = await generateKeyAndCsr(`spiffe://${TRUST_DOMAIN}/host/${name}`);
  const issued = await ca.signCsr(host.csrPem, { identity: `spiffe://${TRUST_DOMAIN}/host/${name}`, ttlMs: HOUR });
  const hostPair = { keyPem: host.keyPem, chainPem: issued.chainPem };
  await store.writeHostPair(hostPair);
  const clock = new FakeClock();
  const sent: CsrMsg[] = [];
  const certs = new CertManager({ hostName: name, trustDomain: TRUST_DOMAIN, hostPair, store, trust: new TrustBundle([ca.rootPem]), log: testLog(), clock, ...opts });
  const renewed: string[] = [];
  certs.on('renewed', (kind: string, n: string) => renewed.push(`${kind}/${n}`));
  const answer = async (msg: CsrMsg, ttlMs = HOUR): Promise<CertMsg> => {
    const c = await ca.signCsr(msg.csr, { identity: { trustDomain: TRUST_DOMAIN, kind: msg.kind, name: msg.name }, ttlMs });
    return { type: 'cert', id: msg.id, kind: msg.kind, name: msg.name, certPem: c.certPem, chainPem: c.chainPem, notAfter: c.notAfter.toISOString() };
  };
  const send = (m: CsrMsg): boolean => (sent.push(m), true);
  return { store, clock, sent, certs, renewed, answer, send, hostNotAfter: issued.notAfter.getTime(), hostNotBefore: issued.notBefore.getTime() };
}

test('renewAt is 2/3 of the way from notBefore to notAfter', () => {
  assert.equal(renewAt(0, 3000), 2000);
  assert.equal(renewAt(1000, 1000 + 24 * HOUR), 1000 + 16 * HOUR);
});

test('a missing service cert is requested on connect, stored 0600 and swapped in; renewals fire at 2/3 of life', async () => {
  const t = await setup('renew-1');
  await t.certs.setServices(['web']);
  assert.equal(t.sent.length, 0, 'nothing goes out while disconnected');
  assert.equal(t.certs.getServiceCert('web'), null);
  assert.deepEqual(t.certs.problems(), ['no certificate for service "web" yet']);

  t.certs.connected(t.send);
  await until(() => t.sent.length === 1, 5000, 'csr');
  const first = t.sent[0]!;
  assert.deepEqual([first.kind, first.name], ['service', 'web'], 'the fresh host cert is not renewed yet');
  // A longer life than the host cert's, so the two renewals come at different times.
  assert.equal(await t.certs.handleCert(await t.answer(first, 2 * HOUR)), true);
  assert.deepEqual(t.renewed, ['service/web']);
  const web = t.certs.getServiceCert('web')!;
  assert.match(web.certPem, /BEGIN CERTIFICATE/);
  assert.match(web.keyPem, /BEGIN PRIVATE KEY/);
  assert.equal(fs.statSync(path.join(t.store.dir, 'services', 'web.key.pem')).mode & 0o777, 0o600);
  assert.deepEqual(t.certs.problems(), []);

  // Host cert: due at 2/3 of its life, not a moment before.
  const hostDue = renewAt(t.hostNotBefore, t.hostNotAfter);
  t.clock.advanceTo(hostDue - 1000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(t.sent.length, 1);
  t.clock.advanceTo(hostDue);
  await until(() => t.sent.length === 2, 5000, 'host csr');
  assert.deepEqual([t.sent[1]!.kind, t.sent[1]!.name], ['host', 'renew-1']);
  // The CA dates certs by the real clock, which the fake one is ahead of: a long life keeps the
  // renewed host cert from falling due again at once.
  const hostBefore = t.certs.getHostCert()!.certPem;
  await t.certs.handleCert(await t.answer(t.sent[1]!, 10 * HOUR));
  assert.notEqual(t.certs.getHostCert()!.certPem, hostBefore);

  // Service cert: the same rule with its own dates.
  const leaf = parseCert(web.certPem);
  const webDue = renewAt(leaf.notBefore, leaf.notAfter);
  t.clock.advanceTo(webDue - 1000);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(t.sent.length, 2);
  t.clock.advanceTo(webDue);
  await until(() => t.sent.length === 3, 5000, 'service renewal csr');
  assert.deepEqual([t.sent[2]!.kind, t.sent[2]!.name], ['service', 'web']);
  assert.notEqual(t.sent[2]!.id, first.id);
  await t.certs.handleCert(await t.answer(t.sent[2]!));
  assert.notEqual(t.certs.getServiceCert('web')!.certPem, web.certPem, 'the new cert is in use');
  assert.notEqual(t.certs.getServiceCert('web')!.keyPem, web.keyPem, 'a fresh key per request');
  assert.deepEqual(t.renewed, ['service/web', 'host/renew-1', 'service/web']);
  t.certs.stop();
});

test('a refusal (error with ref) backs off instead of retrying at once', async () => {
  const t = await setup('refused', { random: () => 0.5 });
  await t.certs.setServices(['web']);
  t.certs.connected(t.send);
  await until(() => t.sent.length === 1, 5000, 'csr');
  assert.equal(t.certs.handleError({ type: 'error', code: 'HM_ERR_NOT_REGISTERED', message: 'web is not registered', ref: t.sent[0]!.id }), true);
  // random 0.5 of a 2 s window = 1 s; nothing before that.
  t.clock.advance(999);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(t.sent.length, 1);
  t.clock.advance(1);
  await until(() => t.sent.length === 2, 5000, 'retry');
  t.certs.handleError({ type: 'error', code: 'HM_ERR_NOT_REGISTERED', message: 'still not', ref: t.sent[1]!.id });
  // The window doubled: 0.5 of 4 s.
  t.clock.advance(1999);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(t.sent.length, 2);
  t.clock.advance(1);
  await until(() => t.sent.length === 3, 5000, 'second retry');
  assert.equal(t.certs.handleError({ type: 'error', code: 'X', message: 'y', ref: 'not-ours' }), false);
  t.certs.stop();
});

test('an unusable answer (wrong key) is refused and retried later; no answer at all times out', async () => {
  const t = await setup('bad-answer', { random: () => 0.5 });
  await t.certs.setServices(['web']);
  t.certs.connected(t.send);
  await until(() => t.sent.length === 1, 5000, 'csr');
  const other = await generateKeyAndCsr(`spiffe://${TRUST_DOMAIN}/service/web`);
  const wrong = await t.answer({ ...t.sent[0]!, csr: other.csrPem });
  assert.equal(await t.certs.handleCert(wrong), true);
  assert.equal(t.certs.getServiceCert('web'), null);
  t.clock.advance(1000);
  await until(() => t.sent.length === 2, 5000, 'retry');
  // No answer: after the answer timeout (60 s) the request is given up, and retried after the
  // backoff, which has doubled to 0.5 of 4 s.
  t.clock.advance(60_000 + 1_999);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(t.sent.length, 2);
  t.clock.advance(1);
  await until(() => t.sent.length === 3, 5000, 'retry after timeout');
  t.certs.stop();
});

test('a disconnect drops pending requests; the next connect asks again', async () => {
  const t = await setup('reconnect');
  await t.certs.setServices(['web']);
  t.certs.connected(t.send);
  await until(() => t.sent.length === 1, 5000, 'csr');
  t.certs.disconnected();
  assert.equal(await t.certs.handleCert(await t.answer(t.sent[0]!)), false, 'answers for the old socket are not taken');
  t.certs.connected(t.send);
  await until(() => t.sent.length === 2, 5000, 'csr again');
  assert.equal(await t.certs.handleCert(await t.answer(t.sent[1]!)), true);
  t.certs.stop();
});

test('an expired cert makes the agent not ready', async () => {
  const t = await setup('expired');
  await t.certs.setServices([]);
  t.clock.advanceTo(t.hostNotAfter + 1);
  assert.match(t.certs.problems()[0]!, /host certificate expired/);
  t.certs.stop();
});
