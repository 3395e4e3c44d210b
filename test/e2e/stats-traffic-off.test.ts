// `metrics: { traffic: false }` takes the traffic metrics off the agents' /metrics, and only that:
// the golden-metric summaries the agents send the server still carry every request, so
// `hostmesh stat` and GET /v1/stats work for operators without Prometheus. Real server, real agent
// processes; addresses 127.0.9.3–127.0.9.4 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { scrape } from '../helpers/prom.js';
import { runCli, startTestServer, type TestServer } from '../helpers/server.js';
import { sendMix, startStatsHosts, waitForSummaries, type StatsHosts } from '../helpers/stats.js';
import { Cleanup } from '../helpers/traffic.js';
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
  let h: StatsHosts;

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    h = await startStatsHosts(s, bag, { prefix: 'stats-off', A, B, webOut: WEB_OUT, dbOut: DB_OUT, metrics: { traffic: false } });
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('the requests sent show up in GET /v1/stats and hostmesh stat; /metrics has no traffic series', { timeout: 40_000 }, async () => {
    await sendMix(h, A, WEB_OUT, OK, FAILED);

    const view = await waitForSummaries(s, OK + FAILED);
    const w = view.services.find((x) => x.service === 'web')!;
    assert.equal(w.failures, FAILED);
    assert.ok(w.p50Ms !== null && w.p50Ms > 0, JSON.stringify(w));
    const edge = view.edges.find((e) => e.destination === 'web')!;
    assert.deepEqual([edge.source, edge.requests, edge.failures], ['api', OK + FAILED, FAILED], 'the caller’s agent counted them too');

    const stat = await runCli(['stat', 'web', '-o', 'json'], { env: h.env });
    assert.equal(stat.code, 0, stat.stderr);
    const json = JSON.parse(stat.stdout) as StatsView;
    assert.deepEqual(json.services.map((x) => [x.service, x.requests, x.failures]), [['web', OK + FAILED, FAILED]]);

    for (const agent of [h.a, h.b]) {
      const m = await scrape(agent.adminUrl);
      for (const name of TRAFFIC_FAMILIES) assert.equal(m.has(name), false, `${agent.spec.name} serves no ${name}`);
      assert.ok(m.has('hostmesh_agent_connected'), `${agent.spec.name} still serves its other metrics`);
      assert.ok(m.has('hostmesh_access_denials_total'), 'and the proxy’s event counters');
    }
  });
});
