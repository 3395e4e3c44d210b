// Snapshots: applied all at once and acked, persisted for restarts; anything wrong (hash, shape, a
// port that cannot be bound) is nacked and the previous config stays in force.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startAgent, type RunningAgent } from '../../agent/main.js';
import { hashOf } from '../../shared/canonical.js';
import { PROTOCOL_VERSION } from '../../shared/protocol.js';
import { agentConfig, freePort, getText, makeSlice, snapshot, startFakeServer, tempDir, until, type FakeServer } from './fake-server.js';
import { FakeHealth, testDeps } from './harness.js';

let fake: FakeServer;
let agent: RunningAgent;
let dir: string;
let stateDir: string;
let paymentsPort: number;
let ordersPort: number;
const health = new FakeHealth();

before(async () => {
  fake = await startFakeServer();
  dir = tempDir();
  stateDir = path.join(dir, 'state');
  paymentsPort = await freePort();
  ordersPort = await freePort();
  agent = await startAgent(
    agentConfig(fake, stateDir, {
      upstreams: [
        { service: 'payments', localPort: paymentsPort },
        { service: 'orders', localPort: ordersPort },
      ],
      services: [
        { name: 'web', port: 8080 },
        { name: 'api', port: 8081, labels: { version: 'v2' } },
      ],
    }),
    testDeps({ health }),
  );
  await fake.waitFor((m) => m.type === 'hello', 10_000, true);
});

after(async () => {
  await agent.stop();
  await fake.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

const dump = async (): Promise<any> => JSON.parse((await getText(`${agent.adminUrl}/config_dump`)).text);
const canConnect = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });

test('hello describes the host, its services, upstreams and facts', async () => {
  const hello = await fake.waitFor((m) => m.type === 'hello', 1000, true);
  assert.equal(hello['protocol'], PROTOCOL_VERSION);
  assert.equal(hello['host'], 'web-1');
  assert.equal(hello['appliedRevision'], null);
  const inbound = hello['inbound'] as { address: string; port: number };
  assert.equal(inbound.address, '127.0.0.1');
  assert.ok(Number.isInteger(inbound.port) && inbound.port > 0);
  assert.deepEqual(hello['services'], [
    { name: 'web', port: 8080, labels: {}, healthy: true },
    { name: 'api', port: 8081, labels: { version: 'v2' }, healthy: true },
  ]);
  assert.deepEqual(hello['upstreams'], ['payments', 'orders']);
  assert.equal(hello['facts'].hostname, 'test');
});

test('a snapshot is applied, persisted and acked; listeners bind for declared upstreams', async () => {
  const snap = snapshot(5, makeSlice(fake.rootPem, ['payments']));
  fake.send(snap);
  const ack = await fake.waitFor((m) => m.type === 'ack' || m.type === 'nack');
  assert.deepEqual(ack, { type: 'ack', revision: 5, hash: snap.hash });

  const saved = JSON.parse(fs.readFileSync(path.join(stateDir, 'snapshot.json'), 'utf8'));
  assert.equal(saved.revision, 5);
  assert.equal(saved.hash, snap.hash);
  assert.deepEqual(saved.slice, snap.slice);
  assert.equal(await canConnect(paymentsPort), true);
  assert.equal(await canConnect(ordersPort), false, 'orders is not declared on the server: no listener');

  // The service cert was requested on connect; once it is in, the agent is ready.
  await until(async () => (await getText(`${agent.adminUrl}/readyz`)).status === 200, 10_000, 'readyz');
  const d = await dump();
  assert.equal(d.appliedRevision, 5);
  assert.equal(d.appliedHash, snap.hash);
  assert.equal(d.connected, true);
  assert.ok(d.certs.host.notAfter);
  assert.ok(d.certs.services.web.notAfter);
  assert.deepEqual(d.health, { web: true, api: true });
  assert.ok(d.certs.services.api.notAfter);
  assert.equal(fs.statSync(path.join(stateDir, 'services', 'web.key.pem')).mode & 0o777, 0o600);

  const metrics = (await getText(`${agent.adminUrl}/metrics`)).text;
  assert.match(metrics, /^hostmesh_agent_config_revision 5$/m);
  assert.match(metrics, /^hostmesh_agent_connected 1$/m);
  assert.match(metrics, /^hostmesh_agent_reconnects_total 0$/m);
  assert.match(metrics, /^hostmesh_agent_cert_expiry_timestamp_seconds\{identity="spiffe:\/\/hostmesh.local\/host\/web-1"\} \d+$/m);
  assert.match(metrics, /^hostmesh_agent_cert_expiry_timestamp_seconds\{identity="spiffe:\/\/hostmesh.local\/service\/web"\} \d+$/m);
});

test('the same hash again is just acked', async () => {
  const snap = snapshot(6, makeSlice(fake.rootPem, ['payments']));
  fake.send(snap);
  assert.deepEqual(await fake.waitFor((m) => m.type === 'ack' || m.type === 'nack'), { type: 'ack', revision: 6, hash: snap.hash });
  assert.equal((await dump()).appliedRevision, 6);
});

async function expectNackKeepingPrevious(msg: unknown, revision: number, error: RegExp): Promise<void> {
  const savedBefore = fs.readFileSync(path.join(stateDir, 'snapshot.json'), 'utf8');
  const before = await dump();
  fake.send(msg);
  const nack = await fake.waitFor((m) => m.type === 'ack' || m.type === 'nack');
  assert.equal(nack.type, 'nack');
  assert.equal(nack['revision'], revision);
  assert.match(nack['error'] as string, error);
  const afterDump = await dump();
  assert.equal(afterDump.appliedRevision, before.appliedRevision);
  assert.equal(afterDump.appliedHash, before.appliedHash);
  assert.equal(fs.readFileSync(path.join(stateDir, 'snapshot.json'), 'utf8'), savedBefore);
  assert.equal(await canConnect(paymentsPort), true, 'the previous listeners still serve');
}

test('a snapshot whose hash does not match its slice is nacked; the previous config stays', async () => {
  const slice = makeSlice(fake.rootPem, []);
  await expectNackKeepingPrevious({ type: 'snapshot', revision: 7, hash: 'f'.repeat(32), slice }, 7, /hash mismatch/);
});

test('an invalid slice is nacked (not just refused as a bad frame); the previous config stays', async () => {
  const slice = { ...makeSlice(fake.rootPem, []), caBundle: [] };
  await expectNackKeepingPrevious(snapshot(8, slice), 8, /invalid slice: slice\.caBundle/);
  const extra = { ...makeSlice(fake.rootPem, []), surprise: true };
  await expectNackKeepingPrevious(snapshot(9, extra), 9, /invalid slice/);
});

test('a delta on the applied slice is rebuilt, checked, applied, persisted whole and acked', async () => {
  const before = await dump();
  const current = makeSlice(fake.rootPem, ['payments']);
  assert.equal(before.appliedHash, hashOf(current));
  const extra = { host: 'db-2', address: '127.0.0.2', port: 15443, labels: { version: 'v2' }, healthy: true };
  const next = structuredClone(current);
  next.upstreams['payments']!.endpoints.push(extra);
  const base = { type: 'delta', revision: 9, hash: hashOf(next), baseHash: before.appliedHash };

  await expectNackKeepingPrevious({ ...base, baseHash: 'a'.repeat(32), patch: { upstreams: { payments: { endpoints: [extra] } } } }, 9, /delta is based on a+ but the applied config is/);
  await expectNackKeepingPrevious({ ...base, patch: { upstreams: { inventory: { endpoints: [extra] } } } }, 9, /invalid delta: upstream "inventory" is new/);
  await expectNackKeepingPrevious({ ...base, patch: { upstreams: { payments: { removed: ['db-1'] } } } }, 9, /hash mismatch/);

  fake.send({ ...base, patch: { upstreams: { payments: { endpoints: [extra] } } } });
  assert.deepEqual(await fake.waitFor((m) => m.type === 'ack' || m.type === 'nack'), { type: 'ack', revision: 9, hash: hashOf(next) });
  const saved = JSON.parse(fs.readFileSync(path.join(stateDir, 'snapshot.json'), 'utf8'));
  assert.deepEqual(saved.slice, next, 'the rebuilt slice is what a restart resumes from');
  assert.equal((await dump()).appliedHash, hashOf(next));
  assert.equal(await canConnect(paymentsPort), true);
});

test('an upstream port already taken fails the whole snapshot: nack naming port and service', async () => {
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen(ordersPort, '127.0.0.1', () => r()));
  try {
    // payments would be dropped and orders added: neither may happen.
    await expectNackKeepingPrevious(snapshot(10, makeSlice(fake.rootPem, ['orders'])), 10, new RegExp(`127\\.0\\.0\\.1:${ordersPort}.*"orders".*already in use`));
  } finally {
    await new Promise<void>((r) => squatter.close(() => r()));
  }
});

test('once the port is free the same change applies: new listener bound, removed one closed', async () => {
  const snap = snapshot(11, makeSlice(fake.rootPem, ['orders']));
  fake.send(snap);
  assert.deepEqual(await fake.waitFor((m) => m.type === 'ack' || m.type === 'nack'), { type: 'ack', revision: 11, hash: snap.hash });
  assert.equal(await canConnect(ordersPort), true);
  await until(async () => !(await canConnect(paymentsPort)), 2000, 'payments listener to close');
  assert.deepEqual((await dump()).listeners, { orders: `127.0.0.1:${ordersPort}` });
});

test('health changes go out batched; after a reconnect the hello carries the full state', async () => {
  health.set('web', false);
  health.set('api', false);
  const msg = await fake.waitFor((m) => m.type === 'health');
  assert.deepEqual(msg['changes'], [
    { service: 'web', healthy: false },
    { service: 'api', healthy: false },
  ]);
  assert.deepEqual((await dump()).health, { web: false, api: false });

  const socketsBefore = fake.sockets;
  fake.dropSocket();
  const hello = await fake.waitFor((m) => m.type === 'hello');
  assert.equal(fake.sockets, socketsBefore + 1);
  assert.equal(hello['appliedRevision'], 11);
  assert.deepEqual(
    (hello['services'] as Array<{ name: string; healthy: boolean }>).map((s) => [s.name, s.healthy]),
    [
      ['web', false],
      ['api', false],
    ],
  );
  assert.match((await getText(`${agent.adminUrl}/metrics`)).text, /^hostmesh_agent_reconnects_total 1$/m);
});

test('the CA bundle in a snapshot replaces ca.pem and is trusted from the next connection on', async () => {
  const { CertificateAuthority } = await import('../../server/ca/index.js');
  const other = await CertificateAuthority.loadOrCreate(path.join(dir, 'other-ca'), 'hostmesh.local');
  const slice = { ...makeSlice(fake.rootPem, ['orders']), caBundle: [fake.rootPem, other.rootPem] };
  const snap = snapshot(20, slice);
  fake.send(snap);
  assert.deepEqual(await fake.waitFor((m) => m.type === 'ack' || m.type === 'nack'), { type: 'ack', revision: 20, hash: snap.hash });
  const caPem = fs.readFileSync(path.join(stateDir, 'ca.pem'), 'utf8');
  assert.equal((caPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  assert.ok(caPem.includes(other.rootPem.trim()));
  fake.dropSocket();
  const hello = await fake.waitFor((m) => m.type === 'hello');
  assert.equal(hello['appliedRevision'], 20);
});
