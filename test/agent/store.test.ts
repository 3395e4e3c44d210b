// The state dir: atomic, owner-only, and safe across a crash between a key's and a cert's write.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { StateStore } from '../../agent/state/store.js';
import { CertificateAuthority } from '../../server/ca/index.js';
import { generateKeyAndCsr } from '../../shared/csr.js';
import { makeSlice, snapshot, tempDir, TRUST_DOMAIN } from './fake-server.js';

let dir: string;
let ca: CertificateAuthority;
before(async () => {
  dir = tempDir();
  ca = await CertificateAuthority.loadOrCreate(path.join(dir, 'ca'), TRUST_DOMAIN);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function pair(name: string): Promise<{ keyPem: string; chainPem: string }> {
  const k = await generateKeyAndCsr(`spiffe://${TRUST_DOMAIN}/service/${name}`);
  const c = await ca.signCsr(k.csrPem, { identity: `spiffe://${TRUST_DOMAIN}/service/${name}`, ttlMs: 3600_000 });
  return { keyPem: k.keyPem, chainPem: c.chainPem };
}

test('init makes the dir 0700, tightening a loose one', async () => {
  const d = path.join(dir, 'loose');
  fs.mkdirSync(d, { mode: 0o755 });
  fs.chmodSync(d, 0o755);
  await new StateStore(d).init();
  assert.equal(fs.statSync(d).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(d, 'services')).mode & 0o777, 0o700);
});

test('a crash after the cert was written but before the key was renamed is finished on read', async () => {
  const store = new StateStore(path.join(dir, 'crash-late'));
  await store.init();
  const old = await pair('web');
  await store.writeServicePair('web', old);
  const next = await pair('web');
  // Simulate: key.next and the cert are written, the final rename never happened.
  const keyFile = path.join(store.dir, 'services', 'web.key.pem');
  fs.writeFileSync(`${keyFile}.next`, next.keyPem, { mode: 0o600 });
  fs.writeFileSync(path.join(store.dir, 'services', 'web.crt.pem'), next.chainPem);
  assert.deepEqual(await store.readServicePair('web'), next);
  assert.equal(fs.existsSync(`${keyFile}.next`), false);
  assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
});

test('a crash before the cert was written keeps the old pair', async () => {
  const store = new StateStore(path.join(dir, 'crash-early'));
  await store.init();
  const old = await pair('web');
  await store.writeServicePair('web', old);
  const next = await pair('web');
  const keyFile = path.join(store.dir, 'services', 'web.key.pem');
  fs.writeFileSync(`${keyFile}.next`, next.keyPem, { mode: 0o600 });
  assert.deepEqual(await store.readServicePair('web'), old);
  assert.equal(fs.existsSync(`${keyFile}.next`), false);
});

test('a mismatched or damaged pair, snapshot or CA file is ignored with a reason', async () => {
  const reasons: string[] = [];
  const store = new StateStore(path.join(dir, 'damaged'), (file, reason) => reasons.push(`${path.basename(file)}: ${reason}`));
  await store.init();
  const a = await pair('web');
  const b = await pair('web');
  await store.writeServicePair('web', { keyPem: a.keyPem, chainPem: b.chainPem });
  assert.equal(await store.readServicePair('web'), null);
  fs.writeFileSync(path.join(store.dir, 'snapshot.json'), '{"revision":1');
  assert.equal(await store.readSnapshot(), null);
  const snap = snapshot(2, makeSlice(ca.rootPem, []));
  await store.writeSnapshot({ revision: 2, hash: snap.hash, slice: { ...(snap.slice as object), mesh: { ...(snap.slice as any).mesh, mtls: 'permissive' } } as any });
  assert.equal(await store.readSnapshot(), null);
  fs.writeFileSync(path.join(store.dir, 'ca.pem'), 'junk');
  assert.equal(await store.readCaBundle(), null);
  assert.deepEqual(reasons, [
    'web.crt.pem: does not match web.key.pem',
    'snapshot.json: is not JSON',
    'snapshot.json: does not match its own hash',
    'ca.pem: holds no certificate',
  ]);
});

test('snapshot round trip', async () => {
  const store = new StateStore(path.join(dir, 'roundtrip'));
  await store.init();
  const snap = snapshot(3, makeSlice(ca.rootPem, ['payments']));
  await store.writeSnapshot({ revision: 3, hash: snap.hash, slice: snap.slice as any });
  assert.deepEqual(await store.readSnapshot(), { revision: 3, hash: snap.hash, slice: snap.slice });
  assert.deepEqual(fs.readdirSync(store.dir).filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
});
