// Golden metrics without Prometheus: after a known number of requests through the mesh (some failing
// on purpose), the agents' summaries reach the server and `hostmesh stat`, GET /v1/stats and
// GET /v1/topology show exactly that traffic. Real server, real agents; addresses 127.0.6.x only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, startTestServer, type TestServer } from '../helpers/server.js';
import { sendMix, startStatsHosts, waitForSummaries, type StatsHosts } from '../helpers/stats.js';
import { Cleanup } from '../helpers/traffic.js';
import type { StatsView } from '../../shared/golden.js';

const A = '127.0.6.1'; // registers api, calls web
const B = '127.0.6.2'; // runs web
const WEB_OUT = 19601;
const DB_OUT = 19602;
const OK = 40;
const FAILED = 10;

describe('golden metrics: agents → server → hostmesh stat', { timeout: 90_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let h: StatsHosts;

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    h = await startStatsHosts(s, bag, { prefix: 'stats', A, B, webOut: WEB_OUT, dbOut: DB_OUT, metrics: {} });
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('a known mix of successes and failures shows up in stat, stats and topology as sent', { timeout: 40_000 }, async () => {
    await sendMix(h, A, WEB_OUT, OK, FAILED);

    // Both agents' summaries: the callee's (inbound) and the caller's (outbound edge).
    const view = await waitForSummaries(s, OK + FAILED);
    const w = view.services.find((x) => x.service === 'web')!;
    assert.equal(w.measuredAt, 'inbound', 'web’s own agent reported what it served');
    assert.equal(w.failures, FAILED);
    assert.equal(w.successRate, OK / (OK + FAILED));
    assert.ok(w.p50Ms !== null && w.p50Ms > 0 && w.p50Ms <= w.p95Ms! && w.p95Ms! <= w.p99Ms!, JSON.stringify(w));
    const edge = view.edges.find((e) => e.destination === 'web')!;
    assert.equal(edge.source, 'api', 'the caller is named by its service');
    assert.equal(edge.requests, OK + FAILED, 'the caller’s agent counted the same requests');
    assert.equal(edge.failures, FAILED);

    const stat = await runCli(['stat', 'web', '-o', 'json'], { env: h.env });
    assert.equal(stat.code, 0, stat.stderr);
    const json = JSON.parse(stat.stdout) as StatsView;
    assert.deepEqual(json.services.map((x) => [x.service, x.requests, x.failures]), [['web', OK + FAILED, FAILED]]);
    const table = await runCli(['stat'], { env: h.env });
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^SERVICE\s+SUCCESS\s+RPS\s+REQUESTS\s+P50\s+P95\s+P99/m);
    assert.match(table.stdout, /^web\s+80\.00%\s+\S+\s+50\s/m);
    const edges = await runCli(['stat', '--edges'], { env: h.env });
    assert.match(edges.stdout, /^api\s+web\s+80\.00%/m);

    const topo = (await s.api('GET', '/v1/topology')).body;
    const webNode = topo.services.find((x: { name: string }) => x.name === 'web');
    assert.deepEqual(webNode.instances, { total: 1, healthy: 1 });
    assert.equal(webNode.stats.requests, OK + FAILED);
    assert.ok(topo.edges.some((e: { source: string; destination: string }) => e.source === 'api' && e.destination === 'web'));
  });

  test('a bad window is refused with a stable code; an unknown service is a 404', async () => {
    const bad = await s.api('GET', '/v1/stats?window=2h');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'HM_ERR_VALIDATION');
    assert.match(bad.body.error.message, /between 10s and 10m/);
    const missing = await s.api('GET', '/v1/stats?service=nosuch');
    assert.equal(missing.status, 404);
    const cli = await runCli(['stat', '--window', 'soon'], { env: h.env });
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /window/);
  });
});
