// Joining: the pin decides whether the server is trusted at all; refusals end the agent at once;
// an unavailable server is retried.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startAgent } from '../../agent/main.js';
import { isHmError } from '../../shared/errors.js';
import { agentConfig, startFakeServer, tempDir, type FakeServer } from './fake-server.js';
import { testDeps } from './harness.js';

let fake: FakeServer;
const dirs: string[] = [];
const newStateDir = (): string => {
  const d = path.join(tempDir(), 'state');
  dirs.push(path.dirname(d));
  return d;
};

before(async () => {
  fake = await startFakeServer();
});
after(async () => {
  await fake.cleanup();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('a server whose chain does not hold the pinned root is refused at once, without retrying or joining', async () => {
  const stateDir = newStateDir();
  const before = { tcp: fake.connections, joins: fake.joins.length };
  const wrongPin = `sha256:${'ab'.repeat(32)}`;
  const t0 = Date.now();
  await assert.rejects(startAgent(agentConfig(fake, stateDir, { caFingerprint: wrongPin, name: 'pin-wrong' }), testDeps()), (e: unknown) => {
    assert.ok(isHmError(e));
    assert.equal(e.code, 'HM_ERR_PIN_MISMATCH');
    assert.match(e.message, /not the hostmesh server the pin names/);
    return true;
  });
  assert.ok(Date.now() - t0 < 3000, 'no retry loop');
  assert.equal(fake.connections - before.tcp, 1, 'one pinning connection, nothing more');
  assert.equal(fake.joins.length, before.joins, 'the token was never sent');
  assert.equal(fs.existsSync(path.join(stateDir, 'host.crt.pem')), false);
});

test('the right pin joins: host key 0600, cert, CA and host.json in a 0700 state dir', async () => {
  const stateDir = newStateDir();
  const agent = await startAgent(agentConfig(fake, stateDir, { name: 'pin-right' }), testDeps());
  try {
    const join = fake.joins.at(-1)!;
    assert.equal(join.host, 'pin-right');
    assert.equal(join.token, 'good-token');
    assert.deepEqual(join.services, ['web']);
    assert.match(join.csr, /BEGIN CERTIFICATE REQUEST/);

    assert.equal(fs.statSync(stateDir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(stateDir, 'host.key.pem')).mode & 0o777, 0o600);
    const cert = fs.readFileSync(path.join(stateDir, 'host.crt.pem'), 'utf8');
    assert.match(cert, /BEGIN CERTIFICATE/);
    assert.equal(fs.readFileSync(path.join(stateDir, 'ca.pem'), 'utf8').trim(), fake.rootPem.trim());
    const info = JSON.parse(fs.readFileSync(path.join(stateDir, 'host.json'), 'utf8'));
    assert.equal(info.name, 'pin-right');
    assert.equal(info.trustDomain, 'hostmesh.local');
    assert.equal(info.server, fake.url);
    assert.ok(!Object.values(info).includes('good-token'));
    assert.equal(agent.certs.getHostCert()?.certPem.includes('BEGIN CERTIFICATE'), true);
  } finally {
    await agent.stop();
  }
});

test('a refused token ends the agent with a one-line instruction and is not retried', async () => {
  const stateDir = newStateDir();
  const joinsBefore = fake.joins.length;
  await assert.rejects(startAgent(agentConfig(fake, stateDir, { name: 'bad-token', token: 'nope' }), testDeps()), (e: unknown) => {
    assert.ok(isHmError(e));
    assert.equal(e.code, 'HM_ERR_TOKEN_INVALID');
    assert.match(e.message, /hostmesh token create/);
    assert.match(e.message, /join token is unknown or expired/, 'carries the server\'s message');
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  assert.equal(fake.joins.length - joinsBefore, 1);
});

test('scope and name refusals are final too, each with its own advice', async () => {
  fake.joinAnswers.push({ status: 403, code: 'HM_ERR_TOKEN_SCOPE', message: 'token allows only api' });
  await assert.rejects(startAgent(agentConfig(fake, newStateDir(), { name: 'scoped' }), testDeps()), /hostmesh token create --services web/);
  fake.joinAnswers.push({ status: 409, code: 'HM_ERR_HOST_EXISTS', message: 'host exists' });
  await assert.rejects(startAgent(agentConfig(fake, newStateDir(), { name: 'taken' }), testDeps()), /another name/);
});

test('a failing server (5xx) is retried with backoff until the join goes through', async () => {
  const joinsBefore = fake.joins.length;
  fake.joinAnswers.push({ status: 503, code: 'HM_ERR_UNAVAILABLE', message: 'database busy' }, { status: 500, code: 'HM_ERR_INTERNAL', message: 'oops' });
  const agent = await startAgent(agentConfig(fake, newStateDir(), { name: 'retry-5xx' }), testDeps());
  await agent.stop();
  assert.equal(fake.joins.length - joinsBefore, 3);
});

test('an unreachable server is retried, and stopping ends the wait', async () => {
  const ctl = new AbortController();
  const cfg = agentConfig(fake, newStateDir(), { name: 'unreachable', server: 'https://127.0.0.1:1' });
  const started = startAgent(cfg, testDeps({ signal: ctl.signal }));
  await new Promise((r) => setTimeout(r, 300));
  ctl.abort();
  await assert.rejects(started, (e: Error) => e.name === 'AbortError');
});
