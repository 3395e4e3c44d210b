// `metrics: { traffic: false }` takes the traffic metrics off the agents' /metrics, and only that:
// the golden-metric summaries the agents send the server still carry every request, so
// `hostmesh stat` and GET /v1/stats work for operators without Prometheus. Real server, real agent
// processes; addresses 127.0.9.3–127.0.9.4 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { scrape } from '../helpers/prom.js';
import { runCli, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { startTwoHosts } from '../helpers/two-hosts.js';
import { waitFor, type TestAgent } from '../helpers/agent.js';
import { Cleanup, agentTails, describeResult, httpRequest, type HeaderEcho } from '../helpers/traffic.js';
import type { StatsView } from '../../shared/golden.js';

const A = '127.0.9.3'; // registers api, calls web
const B = '127.0.9.4'; // runs web
const WEB_OUT = 19903;
const DB_OUT = 19904;
const OK = 20;
const FAILED = 5;
const TRAFFIC_FAMILIES = [
  'hostmesh_requests_total',
  'hostmesh_request_duration_seconds',
  'hostmesh_tcp_connections_opened_total',
  'hostmesh_tcp_connections_active',
  'hostmesh_tcp_bytes_total',
];

describe('metrics.traffic: false keeps hostmesh stat', { timeout: 90_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let web: HeaderEcho;
  let env: Record<string, string>;

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    const off = { metrics: { traffic: false, summaryInterval: '1s' } };
    ({ a, b, web } = await startTwoHosts(s, bag, {
      prefix: 'stats-off',
      A,
      B,
      webOut: WEB_OUT,
      dbOut: DB_OUT,
      meshSpec: { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '2s' },
      extra: { a: off, b: off },
    }));
    const dir = tempDir();
    bag.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'ca.pem'), s.caPem);
    env = { HOSTMESH_ADDR: s.url, HOSTMESH_TOKEN: s.token, HOSTMESH_CA_FILE: path.join(dir, 'ca.pem') };
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('the requests sent show up in GET /v1/stats and hostmesh stat; /metrics has no traffic series', { timeout: 40_000 }, async () => {
    for (let i = 0; i < OK; i++) {
      const r = await httpRequest({ host: A, port: WEB_OUT, path: `/ok/${i}`, timeoutMs: 5000 });
      assert.equal(r.status, 200, `${describeResult(r)}${agentTails([a, b])}`);
    }
    web.setStatus(500);
    for (let i = 0; i < FAILED; i++) assert.equal((await httpRequest({ host: A, port: WEB_OUT, path: '/fail', timeoutMs: 5000 })).status, 500);
    web.setStatus(null);

    const view = await waitFor(`summaries of all ${OK + FAILED} requests from both agents`, async () => {
      const v = (await s.api('GET', '/v1/stats?window=1m')).body as StatsView;
      const w = v.services.find((x) => x.service === 'web');
      const e = v.edges.find((x) => x.destination === 'web');
      return w?.measuredAt === 'inbound' && w.requests === OK + FAILED && e?.requests === OK + FAILED ? v : null;
    }, 15_000, 250);
    const w = view.services.find((x) => x.service === 'web')!;
    assert.equal(w.failures, FAILED);
    assert.ok(w.p50Ms !== null && w.p50Ms > 0, JSON.stringify(w));
    const edge = view.edges.find((e) => e.destination === 'web')!;
    assert.deepEqual([edge.source, edge.requests, edge.failures], ['api', OK + FAILED, FAILED], 'the caller’s agent counted them too');

    const stat = await runCli(['stat', 'web', '-o', 'json'], { env });
    assert.equal(stat.code, 0, stat.stderr);
    const json = JSON.parse(stat.stdout) as StatsView;
    assert.deepEqual(json.services.map((x) => [x.service, x.requests, x.failures]), [['web', OK + FAILED, FAILED]]);

    for (const agent of [a, b]) {
      const m = await scrape(agent.adminUrl);
      for (const name of TRAFFIC_FAMILIES) assert.equal(m.has(name), false, `${agent.spec.name} serves no ${name}`);
      assert.ok(m.has('hostmesh_agent_connected'), `${agent.spec.name} still serves its other metrics`);
      assert.ok(m.has('hostmesh_access_denials_total'), 'and the proxy’s event counters');
    }
  });
});
