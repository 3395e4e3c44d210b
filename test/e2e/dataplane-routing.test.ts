// Routes end to end: match rules (header, path prefix) send requests to the subset with the
// matching instance labels, and a weighted split holds over many requests. Two instances of web,
// labelled version v1 and v2, on two hosts. Addresses 127.0.2.30–127.0.2.39 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createJoinToken, startTestAgent, waitReady, type TestAgent } from '../helpers/agent.js';
import {
  Cleanup,
  agentTails,
  apply,
  applyAndWait,
  countByName,
  describeResult,
  failureSummary,
  httpRequest,
  startHeaderEcho,
  startLoad,
  waitEndpoints,
  type Sample,
} from '../helpers/traffic.js';

const A = '127.0.2.31'; // registers api; calls web
const B = '127.0.2.32'; // web, version v1
const C = '127.0.2.33'; // web, version v2
const WEB_OUT = 19121;

const ROUTE = {
  kind: 'Route',
  name: 'web',
  spec: {
    service: 'web',
    rules: [
      { match: { headers: { 'x-canary': 'yes' } }, destinations: [{ subset: { version: 'v2' }, weight: 100 }] },
      { match: { pathPrefix: '/v2' }, destinations: [{ subset: { version: 'v2' }, weight: 100 }] },
      { match: { path: '/pinned-v1', methods: ['GET'] }, destinations: [{ subset: { version: 'v1' }, weight: 100 }] },
      { destinations: [{ subset: { version: 'v1' }, weight: 90 }, { subset: { version: 'v2' }, weight: 10 }] },
    ],
    timeout: '5s',
  },
};

describe('data plane: routes and weighted subsets', { timeout: 90_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let c: TestAgent;

  /** `n` requests, `concurrency` at a time over keep-alive connections; every answer's echo name. */
  const burst = async (n: number, concurrency: number, path: string | (() => string), headers: Record<string, string> = {}): Promise<Sample[]> => {
    const load = startLoad({ host: A, port: WEB_OUT, concurrency, path, headers, timeoutMs: 5000 });
    const t0 = Date.now();
    while (load.samples.length < n && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 10));
    const all = await load.stop();
    return all.slice(0, n);
  };

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    await apply(s, [
      { kind: 'Mesh', name: 'default', spec: { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '2s' } },
      { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 18080 } },
      { kind: 'Service', name: 'api', spec: { protocol: 'http', port: 18081 } },
      // Round-robin, so the split is the route's doing and not a latency-aware balancer's.
      { kind: 'TrafficPolicy', name: 'web', spec: { service: 'web', loadBalancer: 'round-robin' } },
    ]);
    for (const [ip, name] of [[B, 'web-v1'], [C, 'web-v2']] as const) {
      const e = await startHeaderEcho(ip, 18080, name);
      bag.add(() => e.close());
    }
    const api = await startHeaderEcho(A, 18081, 'api-a');
    bag.add(() => api.close());
    const token = await createJoinToken(s);
    b = await startTestAgent(s, { name: 'dp-route-b', ip: B, token, services: [{ name: 'web', port: 18080, host: B, protocol: 'http', labels: { version: 'v1' } }] });
    bag.add(() => b.cleanup());
    c = await startTestAgent(s, { name: 'dp-route-c', ip: C, token, services: [{ name: 'web', port: 18080, host: C, protocol: 'http', labels: { version: 'v2' } }] });
    bag.add(() => c.cleanup());
    a = await startTestAgent(s, {
      name: 'dp-route-a',
      ip: A,
      token,
      services: [{ name: 'api', port: 18081, host: A, protocol: 'http' }],
      upstreams: [{ service: 'web', localPort: WEB_OUT, bind: A }],
    });
    bag.add(() => a.cleanup());
    await Promise.all([a, b, c].map((x) => waitReady(x)));
    await waitEndpoints(a, 'web', 2);
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('without a route, both instances get traffic', { timeout: 20_000 }, async () => {
    const samples = await burst(200, 4, '/spread');
    assert.equal(samples.filter((x) => x.status !== 200).length, 0, `${failureSummary(samples)}${agentTails([a])}`);
    const by = countByName(samples);
    assert.ok((by['web-v1'] ?? 0) >= 50 && (by['web-v2'] ?? 0) >= 50, `both instances answer: ${JSON.stringify(by)}`);
  });

  test('match rules: /v2 prefix and a header go to the v2 subset; an exact path+method rule to v1', { timeout: 30_000 }, async () => {
    await applyAndWait(s, [ROUTE], [a]);
    const v2 = await burst(100, 4, () => `/v2/item/${Math.floor(Math.random() * 1000)}`);
    assert.deepEqual(countByName(v2), { 'web-v2': 100 }, 'every /v2/… request went to v2');
    const exact = await httpRequest({ host: A, port: WEB_OUT, path: '/v2' });
    assert.equal(exact.json?.name, 'web-v2', `/v2 itself matches the prefix: ${describeResult(exact)}`);
    const canary = await burst(100, 4, '/anything', { 'x-canary': 'yes' });
    assert.deepEqual(countByName(canary), { 'web-v2': 100 }, 'every request with x-canary: yes went to v2');
    const pinned = await burst(100, 4, '/pinned-v1');
    assert.deepEqual(countByName(pinned), { 'web-v1': 100 }, 'GET /pinned-v1 always went to v1');
    // The exact path rule is for GET only: a POST falls through to the 90/10 split (so mostly v1,
    // but what matters is that it is answered).
    const post = await httpRequest({ host: A, port: WEB_OUT, path: '/pinned-v1', method: 'POST', body: 'x' });
    assert.equal(post.status, 200, describeResult(post));
  });

  test('a 90/10 split holds within ±3 % over 2000 requests', { timeout: 45_000 }, async () => {
    const samples = await burst(2000, 16, () => `/split/${Math.floor(Math.random() * 1e6)}`);
    assert.equal(samples.length, 2000);
    assert.equal(samples.filter((x) => x.status !== 200).length, 0, failureSummary(samples));
    const by = countByName(samples);
    const v1 = (by['web-v1'] ?? 0) / samples.length;
    // 90 % ± 3 %: 1740..1860 of 2000. A fair random split has a standard deviation of ~13 requests
    // here, so the band is ~4.5 σ wide on each side: it fails a wrong split, not bad luck.
    assert.ok(v1 >= 0.87 && v1 <= 0.93, `v1 share ${(v1 * 100).toFixed(1)} % (${JSON.stringify(by)}), want 90 ± 3 %`);
    assert.equal((by['web-v1'] ?? 0) + (by['web-v2'] ?? 0), 2000, 'only v1 and v2 answered');
  });

  test('changing the weights under load takes effect without failed requests', { timeout: 30_000 }, async () => {
    const load = startLoad({ host: A, port: WEB_OUT, concurrency: 4, path: '/shift', timeoutMs: 5000 });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const shifted = structuredClone(ROUTE);
      shifted.spec.rules[3] = { destinations: [{ subset: { version: 'v1' }, weight: 0 }, { subset: { version: 'v2' }, weight: 100 }] };
      await applyAndWait(s, [shifted], [a]);
      const from = load.samples.length;
      await new Promise((r) => setTimeout(r, 500));
      const after = load.samples.slice(from);
      assert.ok(after.length >= 20, `load kept flowing: ${after.length} requests`);
      // Requests that started after the new revision was applied all go to v2.
      assert.deepEqual(countByName(after.slice(8)), { 'web-v2': after.length - 8 }, 'after the change, v2 takes everything');
    } finally {
      const all = await load.stop();
      assert.equal(all.filter((x) => x.status !== 200).length, 0, failureSummary(all));
    }
  });
});
