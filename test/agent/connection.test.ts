// The control connection: every frame is validated and a bad one is answered, never fatal; a
// server that refuses the host's certificate is retried with backoff until it accepts again.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startAgent, type RunningAgent } from '../../agent/main.js';
import { agentConfig, getText, makeSlice, snapshot, startFakeServer, tempDir, until, type FakeServer } from './fake-server.js';
import { testDeps } from './harness.js';

let fake: FakeServer;
let agent: RunningAgent;
let dir: string;

before(async () => {
  fake = await startFakeServer();
  dir = tempDir();
  agent = await startAgent(agentConfig(fake, path.join(dir, 'state')), testDeps());
  await fake.waitFor((m) => m.type === 'hello', 10_000, true);
});

after(async () => {
  await agent.stop();
  await fake.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

const nextError = (): Promise<Record<string, unknown>> => fake.waitFor((m) => m.type === 'error');

test('garbage frames are answered with an error naming what was wrong; the connection stays', async () => {
  const sockets = fake.sockets;

  fake.send('this is not json');
  let e = await nextError();
  assert.equal(e['code'], 'HM_ERR_BAD_MESSAGE');
  assert.equal(e['ref'], undefined);

  fake.send({ type: 'surprise', x: 1 });
  e = await nextError();
  assert.deepEqual([e['code'], e['ref']], ['HM_ERR_UNKNOWN_MESSAGE', 'surprise']);

  fake.send({ type: 'cert', id: 'x' });
  e = await nextError();
  assert.deepEqual([e['code'], e['ref']], ['HM_ERR_BAD_MESSAGE', 'cert']);

  fake.send({ type: 'snapshot', slice: {} });
  e = await nextError();
  assert.deepEqual([e['code'], e['ref']], ['HM_ERR_BAD_MESSAGE', 'snapshot']);

  fake.send([1, 2, 3]);
  e = await nextError();
  assert.equal(e['code'], 'HM_ERR_BAD_MESSAGE');

  // Still the same socket, and still doing its job.
  fake.send({ type: 'ping', at: new Date().toISOString() });
  const snap = snapshot(3, makeSlice(fake.rootPem, []));
  fake.send(snap);
  assert.deepEqual(await fake.waitFor((m) => m.type === 'ack'), { type: 'ack', revision: 3, hash: snap.hash });
  assert.equal(fake.sockets, sockets);
  assert.equal(fake.connected(), true);
});

test('a certificate nobody asked for is ignored', async () => {
  const sockets = fake.sockets;
  fake.send({ type: 'cert', id: 'unknown', kind: 'service', name: 'web', certPem: 'x', chainPem: 'x', notAfter: new Date().toISOString() });
  const snap = snapshot(4, makeSlice(fake.rootPem, ['payments']));
  fake.send(snap);
  assert.equal((await fake.waitFor((m) => m.type === 'ack' || m.type === 'error'))['type'], 'ack');
  assert.equal(fake.sockets, sockets);
});

test('a refused host certificate is logged and retried with backoff until the server accepts it', async () => {
  fake.refuseSockets = { status: 403, code: 'HM_ERR_FORBIDDEN', message: 'host web-1 is revoked' };
  const before = fake.connections;
  fake.dropSocket();
  await until(() => fake.connections - before >= 3, 10_000, 'several refused attempts');
  assert.equal(fake.connected(), false);
  assert.equal(JSON.parse((await getText(`${agent.adminUrl}/config_dump`)).text).connected, false);
  assert.match((await getText(`${agent.adminUrl}/metrics`)).text, /^hostmesh_agent_connected 0$/m);

  fake.refuseSockets = null;
  const hello = await fake.waitFor((m) => m.type === 'hello', 15_000);
  assert.equal(hello['appliedRevision'], 4);
  await until(async () => JSON.parse((await getText(`${agent.adminUrl}/config_dump`)).text).connected === true, 5000, 'connected');
});
