// The host config's metrics switches as the proxy sees them: `traffic` (the Prometheus traffic
// series) and `summaries` (what hostmesh stat is made of). Per-request figures are kept while
// either wants them, and not at all when both are off.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { ProxyMetrics } from '../../agent/proxy/metrics.js';
import { resolveHostConfig } from '../../shared/host-config.js';

const base = { name: 'h1', server: 'https://127.0.0.1:7443', caFingerprint: `sha256:${'a'.repeat(64)}`, token: 't', address: '127.0.0.1', services: [] };

test('metrics.summaries is read from the host config, default true; a wrong type is refused', () => {
  assert.equal(resolveHostConfig(base).metrics?.summaries, true);
  assert.equal(resolveHostConfig({ ...base, metrics: { traffic: false, summaries: false } }).metrics?.summaries, false);
  assert.throws(() => resolveHostConfig({ ...base, metrics: { summaries: 'no' } }), /summaries/);
});

test('edges are kept while /metrics or the summaries want them, and not at all when neither does', async () => {
  const cases = [
    { traffic: true, summaries: true, kept: true, exposed: true },
    { traffic: false, summaries: true, kept: true, exposed: false },
    { traffic: true, summaries: false, kept: true, exposed: true },
    { traffic: false, summaries: false, kept: false, exposed: false },
  ];
  for (const c of cases) {
    const registry = new Registry();
    const m = new ProxyMetrics(registry, c);
    const edge = m.edge('inbound', 'api', 'web');
    assert.equal(edge !== null, c.kept, JSON.stringify(c));
    assert.equal(m.requests.edges().length, c.kept ? 1 : 0);
    assert.equal((await registry.metrics()).includes('hostmesh_requests_total'), c.exposed, JSON.stringify(c));
  }
});
