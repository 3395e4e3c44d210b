// Agents against a real server: join, certificates, config push, nack, health, server restarts.
// Each agent is a real process on its own loopback address.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createJoinToken, startEchoService, startTestAgent, waitFor, waitReady, type TestAgent } from '../helpers/agent.js';

const TD = 'hostmesh.local';

function uriOf(pem: string): string {
  return new X509Certificate(pem).subjectAltName!.split(', ').find((x) => x.startsWith('URI:'))!.slice(4);
}

describe('agents', () => {
  let s: TestServer;
  const agents: TestAgent[] = [];
  const services: Array<{ close(): Promise<void> }> = [];
  let a: TestAgent; // web v1 on 127.0.1.2
  let b: TestAgent; // web v2 on 127.0.1.3, with an http health check
  let c: TestAgent; // api on 127.0.1.4, calls web
  let bWeb: Awaited<ReturnType<typeof startEchoService>>;

  before(async () => {
    s = await startTestServer();
    const r = await s.api('POST', '/v1/apply', {
      documents: [
        { kind: 'Mesh', name: 'default', spec: { defaultAccess: 'deny', disconnectGracePeriod: '2s', certTTL: '1h' } },
        { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 8080 } },
        { kind: 'Service', name: 'api', spec: { protocol: 'http', port: 8081 } },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    services.push(await startEchoService('127.0.1.2', 8080, 'web-v1'));
    bWeb = await startEchoService('127.0.1.3', 8080, 'web-v2');
    services.push(bWeb);
    services.push(await startEchoService('127.0.1.4', 8081, 'api'));
  });

  after(async () => {
    for (const x of agents) await x.cleanup();
    for (const x of services) await x.close();
    await s?.cleanup();
  });

  test('three agents join; each gets its host certificate and certificates for its own services only', async () => {
    const token = await createJoinToken(s);
    a = await startTestAgent(s, { name: 'host-a', ip: '127.0.1.2', token, services: [{ name: 'web', port: 8080, host: '127.0.1.2', labels: { version: 'v1' } }] });
    b = await startTestAgent(s, {
      name: 'host-b',
      ip: '127.0.1.3',
      token,
      services: [{ name: 'web', port: 8080, host: '127.0.1.3', labels: { version: 'v2' }, check: { http: '/healthz', interval: '200ms', timeout: '150ms', fall: 2, rise: 1 } }],
    });
    c = await startTestAgent(s, { name: 'host-c', ip: '127.0.1.4', token, services: [{ name: 'api', port: 8081, host: '127.0.1.4' }], upstreams: [{ service: 'web', localPort: 19001, bind: '127.0.1.4' }] });
    agents.push(a, b, c);
    await Promise.all([a, b, c].map((x) => waitReady(x)));

    for (const [agent, svcs] of [[a, ['web']], [b, ['web']], [c, ['api']]] as const) {
      const host = fs.readFileSync(path.join(agent.stateDir, 'host.crt.pem'), 'utf8');
      assert.equal(uriOf(host), `spiffe://${TD}/host/${agent.spec.name}`);
      assert.equal(fs.statSync(path.join(agent.stateDir, 'host.key.pem')).mode & 0o777, 0o600);
      const certDir = path.join(agent.stateDir, 'services');
      const crts = fs.readdirSync(certDir).filter((f) => f.endsWith('.crt.pem'));
      assert.deepEqual(crts.map((f) => f.replace('.crt.pem', '')).sort(), [...svcs]);
      for (const f of crts) {
        const pem = fs.readFileSync(path.join(certDir, f), 'utf8');
        assert.equal(uriOf(pem), `spiffe://${TD}/service/${f.replace('.crt.pem', '')}`);
        const root = new X509Certificate(s.caPem);
        assert.ok(new X509Certificate(pem).verify(root.publicKey), 'service cert chains to the mesh root');
      }
    }
    const hosts = await s.api('GET', '/v1/hosts');
    assert.deepEqual(hosts.body.items.map((h: { name: string }) => h.name), ['host-a', 'host-b', 'host-c']);
    const facts = hosts.body.items[0].facts;
    assert.ok(facts && typeof facts === 'object' && Object.keys(facts).length > 3, `host facts reported: ${JSON.stringify(facts)}`);
    // host-b has a health check: unknown (so not yet routable) until its first probe passes.
    const inst = await waitFor('both web instances healthy', async () => {
      const items = (await s.api('GET', '/v1/instances?service=web')).body.items;
      return items.length === 2 && items.every((i: { healthy: boolean }) => i.healthy) ? items : null;
    });
    assert.deepEqual(inst.map((i: { host: string }) => i.host), ['host-a', 'host-b']);
    // host-c calls web: it received both endpoints, with their labels.
    const dump = await waitFor('host-c sees both', async () => {
      const d = await c.configDump();
      return d.slice.upstreams.web.endpoints.every((e: { healthy: boolean }) => e.healthy) ? d : null;
    });
    const eps = dump.slice.upstreams.web.endpoints;
    assert.deepEqual(eps.map((e: { host: string; labels: { version: string } }) => [e.host, e.labels.version]), [['host-a', 'v1'], ['host-b', 'v2']]);
  });

  test('wrong, expired, revoked, reused single-use and out-of-scope tokens are refused and the agent exits non-zero', async () => {
    const cases: Array<{ name: string; token: string; services?: Array<Record<string, unknown>>; expect: RegExp }> = [];
    cases.push({ name: 'bad-1', token: 'hmj_0123456789abcdef_' + 'x'.repeat(43), expect: /token/i });

    const expired = await createJoinToken(s);
    const db = new Database(path.join(s.dataDir, 'hostmesh.db'));
    db.prepare('UPDATE join_tokens SET expires_at = ? WHERE id = ?').run(new Date(Date.now() - 1000).toISOString(), expired.split('_')[1]);
    db.close();
    cases.push({ name: 'bad-2', token: expired, expect: /token/i });

    const revoked = await createJoinToken(s);
    await s.api('DELETE', `/v1/tokens/${revoked.split('_')[1]}`);
    cases.push({ name: 'bad-3', token: revoked, expect: /token/i });

    const scoped = await createJoinToken(s, { services: ['api'] });
    cases.push({ name: 'bad-4', token: scoped, services: [{ name: 'web', port: 8080 }], expect: /allows only api/ });

    const single = await createJoinToken(s, { singleUse: true });
    const first = await startTestAgent(s, { name: 'once-1', ip: '127.0.1.9', adminPort: 15091, token: single });
    agents.push(first);
    await waitReady(first);
    cases.push({ name: 'once-2', token: single, expect: /token/i });

    for (const [i, c] of cases.entries()) {
      const ag = await startTestAgent(s, { name: c.name, ip: '127.0.1.9', adminPort: 15092 + i, inboundPort: 16000 + i, token: c.token, services: c.services ?? [] });
      agents.push(ag);
      const code = await Promise.race([ag.exited(), new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
      assert.notEqual(code, 0, `${c.name} should exit non-zero`);
      assert.notEqual(code, 'still running', `${c.name} must not retry a refused token`);
      assert.match(ag.output(), c.expect, `${c.name}: ${ag.output().slice(-600)}`);
      assert.ok(!fs.existsSync(path.join(ag.stateDir, 'host.crt.pem')), `${c.name} got no certificate`);
    }
    // The scoped token was not used up by the refused join.
    const tokens = await s.api('GET', '/v1/tokens');
    assert.equal(tokens.body.items.find((t: { id: string }) => t.id === scoped.split('_')[1]).usedCount, 0);
    const hosts = (await s.api('GET', '/v1/hosts')).body.items.map((h: { name: string }) => h.name);
    assert.ok(!hosts.some((h: string) => h.startsWith('bad-') || h === 'once-2'));
    await first.stop();
    assert.equal((await s.api('DELETE', '/v1/hosts/once-1')).status, 200);
  });

  test('a host cannot get a certificate for a service it does not register, or another host’s identity', async () => {
    const raw = await joinRawHost(s, 'raw-1', ['web']);
    const ws = await openAgentSocket(s, raw);
    try {
      ws.send(JSON.stringify(helloFor(raw)));
      const snapshot = await nextMessage(ws, (m) => m.type === 'snapshot' || m.type === 'error');
      assert.equal(snapshot.type, 'snapshot');
      const { generateKeyAndCsr } = await import('../../shared/csr.js');
      const { csrPem } = await generateKeyAndCsr(`spiffe://${TD}/service/api`);
      ws.send(JSON.stringify({ type: 'csr', id: 'x1', kind: 'service', name: 'api', csr: csrPem }));
      const refused = await nextMessage(ws, (m) => m.ref === 'x1');
      assert.equal(refused.type, 'error');
      assert.equal(refused.code, 'HM_ERR_NOT_REGISTERED');
      const other = await generateKeyAndCsr(`spiffe://${TD}/host/host-c`);
      ws.send(JSON.stringify({ type: 'csr', id: 'x2', kind: 'host', name: 'host-c', csr: other.csrPem }));
      const refused2 = await nextMessage(ws, (m) => m.ref === 'x2');
      assert.equal(refused2.code, 'HM_ERR_IDENTITY');
      // A host certificate is never an admin credential.
    const { Agent: UAgent, request } = await import('undici');
    const withCert = new UAgent({ connect: { ca: s.caPem, cert: raw.certPem, key: raw.keyPem } });
    const asAdmin = await request(`${s.url}/v1/status`, { dispatcher: withCert });
    assert.equal(asAdmin.statusCode, 401);
    await asAdmin.body.dump();
    await withCert.close();
    // Its own service works.
      const own = await generateKeyAndCsr(`spiffe://${TD}/service/web`);
      ws.send(JSON.stringify({ type: 'csr', id: 'x3', kind: 'service', name: 'web', csr: own.csrPem }));
      const cert = await nextMessage(ws, (m) => m.id === 'x3' || m.ref === 'x3');
      assert.equal(cert.type, 'cert');
      assert.equal(uriOf(cert.certPem), `spiffe://${TD}/service/web`);
    } finally {
      ws.close();
    }
  });

  test('forged or malformed WebSocket messages are answered with an error; a socket without a host cert is refused', async () => {
    const raw = await joinRawHost(s, 'raw-2', ['web']);
    const ws = await openAgentSocket(s, raw);
    try {
      ws.send('this is not json');
      assert.equal((await nextMessage(ws, (m) => m.type === 'error')).code, 'HM_ERR_BAD_MESSAGE');
      ws.send(JSON.stringify({ type: 'ack', revision: 1, hash: 'x' }));
      assert.match((await nextMessage(ws, (m) => m.type === 'error')).message, /hello/);
      ws.send(JSON.stringify({ ...helloFor(raw), host: 'host-a' }));
      assert.equal((await nextMessage(ws, (m) => m.type === 'error')).code, 'HM_ERR_IDENTITY');
    } finally {
      ws.close();
    }
    const ws2 = await openAgentSocket(s, raw);
    try {
      ws2.send(JSON.stringify({ type: 'launch-missiles' }));
      assert.equal((await nextMessage(ws2, (m) => m.type === 'error')).code, 'HM_ERR_UNKNOWN_MESSAGE');
      ws2.send(JSON.stringify({ ...helloFor(raw), services: [{ name: 'web', port: 'eighty', labels: {}, healthy: true }] }));
      assert.match((await nextMessage(ws2, (m) => m.type === 'error')).message, /services\[0\]\.port/);
      assert.equal(ws2.readyState, WebSocket.OPEN, 'bad messages do not kill the connection');
    } finally {
      ws2.close();
    }
    // No client certificate at all.
    const noCert = new WebSocket(`wss://127.0.0.1:${s.port}/v1/agent/connect`, { ca: s.caPem });
    const status = await new Promise<number>((resolve) => {
      noCert.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      noCert.on('open', () => resolve(101));
      noCert.on('error', () => resolve(-1));
    });
    noCert.terminate();
    assert.equal(status, 401);
    // The server is still fine.
    assert.equal((await s.api('GET', '/v1/status')).status, 200);
    for (const name of ['raw-1', 'raw-2']) assert.equal((await s.api('DELETE', `/v1/hosts/${name}`)).status, 200);
  });

  test('a removed host that joins again: only the new membership’s certificate connects', async () => {
    const old = await joinRawHost(s, 'raw-3', []);
    (await openAgentSocket(s, old)).close();
    assert.equal((await s.api('DELETE', '/v1/hosts/raw-3')).status, 200);
    const fresh = await joinRawHost(s, 'raw-3', []);
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`wss://127.0.0.1:${s.port}/v1/agent/connect`, { ca: s.caPem, cert: old.certPem, key: old.keyPem });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => (ws.close(), resolve(101)));
      ws.on('error', () => resolve(-1));
    });
    assert.equal(status, 403, 'the certificate of the previous membership is refused');
    (await openAgentSocket(s, fresh)).close();
    assert.equal((await s.api('DELETE', '/v1/hosts/raw-3')).status, 200);
  });

  test('an apply reaches every affected agent and status shows them at the new revision', async () => {
    const r = await s.api('PUT', '/v1/resources/Mesh/default', { kind: 'Mesh', name: 'default', spec: { defaultAccess: 'allow', disconnectGracePeriod: '2s', certTTL: '1h' } });
    assert.equal(r.status, 200);
    const rev = r.body.status.revision as number;
    for (const x of [a, b, c]) {
      await waitFor(`${x.spec.name} at ${rev}`, async () => (await x.configDump()).appliedRevision === rev);
      assert.equal((await x.configDump()).slice.mesh.defaultAccess, 'allow');
    }
    const st = await waitFor('status in sync', async () => {
      const body = (await s.api('GET', '/v1/status')).body;
      const mine = body.hosts.filter((h: { name: string }) => ['host-a', 'host-b', 'host-c'].includes(h.name));
      return mine.length === 3 && mine.every((h: { appliedRevision: number; behind: boolean; connected: boolean }) => h.appliedRevision === rev && !h.behind && h.connected) ? body : null;
    });
    assert.equal(st.revision, rev);
    const metrics = parsePrometheusTextFormat((await s.api('GET', '/metrics')).body as string);
    const m = new Map(metrics.map((f) => [f.name, f]));
    assert.ok(Number(m.get('hostmesh_server_agents_connected')!.metrics[0]!.value) >= 3);
    assert.ok(Number(m.get('hostmesh_server_push_to_ack_seconds')!.metrics[0]!.count) >= 3, 'push-to-ack observed for each agent');
    const deltas = m.get('hostmesh_server_config_pushes_total')!.metrics.find((x) => x.labels?.['kind'] === 'delta');
    assert.ok(Number(deltas?.value) >= 3, 'agents that acked a slice get the change as a delta');
    // Sampled every 10 s: every connected agent observed, all caught up once in sync.
    const lag = await waitFor('a revision-lag sample', async () => {
      const fams = new Map(parsePrometheusTextFormat((await s.api('GET', '/metrics')).body as string).map((f) => [f.name, f]));
      const h = fams.get('hostmesh_server_agent_revision_lag')!.metrics[0]!;
      return Number(h.count) >= 3 && fams.get('hostmesh_server_agents_behind')!.metrics[0]!.value === '0' ? h : null;
    }, 15_000, 200);
    assert.ok(Number(lag.buckets!['0']) >= 3, 'agents in sync count as lag 0');
  });

  test('a delta the agent cannot rebuild is followed by the whole snapshot; protocol-1 agents only ever get snapshots', async () => {
    assert.equal((await s.api('PUT', '/v1/resources/Service/delta-up', { kind: 'Service', name: 'delta-up', spec: { protocol: 'tcp', port: 7000 } })).status, 201);
    const v2 = await joinRawHost(s, 'raw-delta-2', []);
    const v1 = await joinRawHost(s, 'raw-delta-1', []);
    const ws2 = await openAgentSocket(s, v2);
    const ws1 = await openAgentSocket(s, v1);
    try {
      ws2.send(JSON.stringify({ ...helloFor(v2), protocol: 2, upstreams: ['delta-up'] }));
      ws1.send(JSON.stringify({ ...helloFor(v1), protocol: 1, upstreams: ['delta-up'] }));
      for (const ws of [ws1, ws2]) {
        const first = await nextMessage(ws, (m) => m.type === 'snapshot');
        assert.equal(first.slice.upstreams['delta-up'].spec.port, 7000);
        ws.send(JSON.stringify({ type: 'ack', revision: first.revision, hash: first.hash }));
      }
      const r = await s.api('PUT', '/v1/resources/Service/delta-up', { kind: 'Service', name: 'delta-up', spec: { protocol: 'tcp', port: 7001 } });
      const delta = await nextMessage(ws2, (m) => m.type === 'delta' || m.type === 'snapshot');
      assert.equal(delta.type, 'delta');
      assert.equal(delta.revision, r.body.status.revision);
      assert.deepEqual(delta.patch, { upstreams: { 'delta-up': { spec: { protocol: 'tcp', port: 7001 } } } }, 'only what changed travels');
      const old = await nextMessage(ws1, (m) => m.type === 'delta' || m.type === 'snapshot');
      assert.equal(old.type, 'snapshot', 'an agent speaking protocol 1 gets the whole slice');
      assert.equal(old.hash, delta.hash);
      // This agent says it cannot use the delta: the server sends the whole slice at once.
      ws2.send(JSON.stringify({ type: 'nack', revision: delta.revision, hash: delta.hash, error: 'delta is based on x but the applied config is y' }));
      const whole = await nextMessage(ws2, (m) => m.type === 'delta' || m.type === 'snapshot');
      assert.equal(whole.type, 'snapshot');
      assert.equal(whole.hash, delta.hash);
      assert.equal(whole.slice.upstreams['delta-up'].spec.port, 7001);
    } finally {
      ws1.close();
      ws2.close();
      await s.api('DELETE', '/v1/hosts/raw-delta-1');
      await s.api('DELETE', '/v1/hosts/raw-delta-2');
      await s.api('DELETE', '/v1/resources/Service/delta-up');
    }
  });

  test('a snapshot the agent cannot apply is nacked, the old config stays, and status shows the nack', async () => {
    // host-c will call "db" on a port something else already holds.
    const blocker = net.createServer().listen(19002, '127.0.1.4');
    await new Promise((r) => blocker.once('listening', r));
    const d = await startTestAgent(s, {
      name: 'host-d',
      ip: '127.0.1.5',
      token: await createJoinToken(s),
      upstreams: [{ service: 'web', localPort: 19003, bind: '127.0.1.5' }, { service: 'db', localPort: 19002, bind: '127.0.1.4' }],
    });
    agents.push(d);
    try {
      await waitReady(d);
      const before = await d.configDump();
      const r = await s.api('PUT', '/v1/resources/Service/db', { kind: 'Service', name: 'db', spec: { protocol: 'tcp', port: 5432 } });
      assert.equal(r.status, 201);
      const host = await waitFor('nack in status', async () => {
        const h = (await s.api('GET', '/v1/status')).body.hosts.find((x: { name: string }) => x.name === 'host-d');
        return h?.lastNack ? h : null;
      });
      assert.match(host.lastNack.error, /19002/);
      assert.equal(host.behind, true);
      const after = await d.configDump();
      assert.equal(after.appliedRevision, before.appliedRevision, 'previous config still in force');
      assert.equal(after.slice.upstreams.db, undefined);
      assert.equal((await d.admin('/readyz')).status, 200);
      // Once the port is free, the next change is applied.
      await new Promise((r) => blocker.close(r));
      const r2 = await s.api('PUT', '/v1/resources/Service/db', { kind: 'Service', name: 'db', spec: { protocol: 'tcp', port: 5433 } });
      await waitFor('db applied', async () => (await d.configDump()).appliedRevision === r2.body.status.revision);
    } finally {
      if (blocker.listening) blocker.close();
      await d.stop();
      await s.api('DELETE', '/v1/hosts/host-d');
    }
  });

  test('a failing health check drops the instance from callers’ endpoints within interval × fall, and only they are pushed', async () => {
    const revA = (await a.configDump()).appliedRevision;
    bWeb.setSick(true);
    const t0 = Date.now();
    await waitFor('host-b unhealthy at host-c', async () => {
      const eps = (await c.configDump()).slice.upstreams.web.endpoints;
      return eps.find((e: { host: string }) => e.host === 'host-b')?.healthy === false;
    }, 5000, 20);
    const took = Date.now() - t0;
    // interval 200ms × fall 2, plus the probe timeout and one push.
    assert.ok(took < 200 * 2 + 150 + 600, `took ${took} ms`);
    const inst = await s.api('GET', '/v1/instances?service=web');
    assert.equal(inst.body.items.find((i: { host: string }) => i.host === 'host-b').healthy, false);
    // host-a does not call web: its slice did not change, so it was not pushed anything.
    assert.equal((await a.configDump()).appliedRevision, revA);
    bWeb.setSick(false);
    await waitFor('host-b healthy again', async () => {
      const eps = (await c.configDump()).slice.upstreams.web.endpoints;
      return eps.find((e: { host: string }) => e.host === 'host-b')?.healthy === true;
    }, 5000, 20);
  });

  test('server killed: agents keep serving their config; server back: they reconnect and resync', async () => {
    const before = await c.configDump();
    await s.kill9();
    await new Promise((r) => setTimeout(r, 500));
    for (const x of [a, b, c]) assert.equal((await x.admin('/readyz')).status, 200, `${x.spec.name} still ready`);
    assert.deepEqual((await c.configDump()).slice, before.slice);
    // An agent restarted while the server is down comes up from its persisted snapshot and certs.
    await c.stop();
    c.start();
    await waitReady(c);
    assert.deepEqual((await c.configDump()).slice, before.slice);

    await s.restart();
    await waitFor('all reconnected', async () => {
      const hosts = (await s.api('GET', '/v1/status')).body.hosts.filter((h: { name: string }) => ['host-a', 'host-b', 'host-c'].includes(h.name));
      return hosts.length === 3 && hosts.every((h: { connected: boolean }) => h.connected);
    }, 45_000, 200);
    const r = await s.api('PUT', '/v1/resources/Service/web', { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 8090 } });
    await waitFor('resync after restart', async () => (await c.configDump()).appliedRevision === r.body.status.revision);
    assert.equal((await c.configDump()).slice.upstreams.web.spec.port, 8090);
  });

  test('a disconnected agent’s instances go unhealthy after the grace period and come back with it', async () => {
    await a.kill9();
    await waitFor('host-a instances unhealthy', async () => {
      const eps = (await c.configDump()).slice.upstreams.web.endpoints;
      return eps.find((e: { host: string }) => e.host === 'host-a')?.healthy === false;
    }, 20_000, 100);
    a.start();
    await waitReady(a);
    await waitFor('host-a healthy again', async () => {
      const eps = (await c.configDump()).slice.upstreams.web.endpoints;
      return eps.find((e: { host: string }) => e.host === 'host-a')?.healthy === true;
    }, 20_000, 100);
  });
});

interface RawHost {
  name: string;
  services: string[];
  certPem: string;
  keyPem: string;
}

/** Join a host through the API directly (no agent process), for tests that speak the protocol by hand. */
async function joinRawHost(s: TestServer, name: string, services: string[]): Promise<RawHost> {
  const { generateKeyAndCsr } = await import('../../shared/csr.js');
  const { keyPem, csrPem } = await generateKeyAndCsr(`spiffe://${TD}/host/${name}`);
  const token = await createJoinToken(s);
  const r = await s.api('POST', '/v1/join', { token, host: name, csr: csrPem, services }, { token: null });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { name, services, certPem: r.body.chainPem, keyPem };
}

function helloFor(h: RawHost) {
  return {
    type: 'hello',
    protocol: 1,
    host: h.name,
    agentVersion: 'test',
    appliedRevision: null,
    appliedHash: null,
    inbound: { address: '127.0.1.200', port: 15443 },
    services: h.services.map((name) => ({ name, port: 8080, labels: {}, healthy: false })),
    upstreams: [],
    facts: {},
  };
}

/** A raw WebSocket with a host certificate: lets a test say things a real agent would not. */
async function openAgentSocket(s: TestServer, h: RawHost): Promise<WebSocket & { inbox: any[] }> {
  const ws = new WebSocket(`wss://127.0.0.1:${s.port}/v1/agent/connect`, { ca: s.caPem, cert: h.certPem, key: h.keyPem }) as WebSocket & { inbox: any[] };
  ws.inbox = [];
  ws.on('message', (d) => ws.inbox.push(JSON.parse(d.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

async function nextMessage(ws: WebSocket & { inbox: any[] }, pred: (m: any) => boolean, timeoutMs = 5000): Promise<any> {
  return waitFor('message', () => {
    const i = ws.inbox.findIndex(pred);
    if (i < 0) return null;
    return ws.inbox.splice(i, 1)[0];
  }, timeoutMs, 10);
}
