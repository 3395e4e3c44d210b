// The server is not on the request path: an agent restarted while the server is down serves from
// the snapshot and certificates it persisted, and reconnects when the server is back.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { startAgent } from '../../agent/main.js';
import { agentConfig, freePort, getText, makeSlice, snapshot, startFakeServer, tempDir, until } from './fake-server.js';
import { testDeps } from './harness.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('restarted while the server is down: ready from disk, listeners up, then reconnects', async () => {
  const fake = await startFakeServer();
  cleanups.push(() => fake.cleanup());
  const dir = tempDir();
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const cfg = agentConfig(fake, path.join(dir, 'state'), { upstreams: [{ service: 'payments', localPort: port }] });

  const first = await startAgent(cfg, testDeps());
  const snap = snapshot(12, makeSlice(fake.rootPem, ['payments']));
  await fake.waitFor((m) => m.type === 'hello', 10_000, true);
  fake.send(snap);
  await fake.waitFor((m) => m.type === 'ack');
  await until(async () => (await getText(`${first.adminUrl}/readyz`)).status === 200, 10_000, 'first agent ready');
  await first.stop();
  await fake.stop();

  // No token any more: a joined host never needs it again.
  const second = await startAgent({ ...cfg, token: null }, testDeps());
  cleanups.push(() => second.stop());
  const ready = await getText(`${second.adminUrl}/readyz`);
  assert.equal(ready.status, 200, ready.text);
  const d = JSON.parse((await getText(`${second.adminUrl}/config_dump`)).text);
  assert.equal(d.connected, false);
  assert.equal(d.appliedRevision, 12);
  assert.equal(d.appliedHash, snap.hash);
  assert.ok(d.certs.services.web);
  const accepted = await new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
  assert.equal(accepted, true, 'the upstream listener is back without the server');

  const helloCount = fake.received.filter((m) => m.type === 'hello').length;
  await fake.start();
  const hello = await fake.waitFor((m) => m.type === 'hello' && fake.received.filter((x) => x.type === 'hello').length > helloCount, 15_000, true);
  assert.equal(hello['appliedRevision'], 12);
  assert.equal(hello['appliedHash'], snap.hash);
  // The server sees nothing to change: the same hash is acked, no listener churn.
  fake.send(snapshot(13, makeSlice(fake.rootPem, ['payments'])));
  assert.deepEqual(await fake.waitFor((m) => m.type === 'ack'), { type: 'ack', revision: 13, hash: snap.hash });
});

test('until the config and every cert are in, the agent is not ready and says why', async () => {
  const fake = await startFakeServer();
  cleanups.push(() => fake.cleanup());
  const dir = tempDir();
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cfg = agentConfig(fake, path.join(dir, 'state'), { name: 'lonely' });
  fake.answerCsrs = false;
  const agent = await startAgent(cfg, testDeps());
  cleanups.push(() => agent.stop());
  const r = await getText(`${agent.adminUrl}/readyz`);
  assert.equal(r.status, 503);
  assert.match(r.text, /no configuration applied yet/);
  await fake.waitFor((m) => m.type === 'hello', 10_000, true);
  fake.send(snapshot(1, makeSlice(fake.rootPem, [])));
  await fake.waitFor((m) => m.type === 'ack', 10_000, true);
  const r2 = await getText(`${agent.adminUrl}/readyz`);
  assert.equal(r2.status, 503);
  assert.match(r2.text, /no certificate for service "web" yet/);
});
