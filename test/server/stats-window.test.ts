// The server's window of golden metrics: summaries merge by adding counts, old slots fall out, and
// quantiles come from the buckets like Prometheus' histogram_quantile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { emptyLatency, LATENCY_BOUNDS_SECONDS, quantile, type EdgeSummary } from '../../shared/golden.js';
import { StatsWindow } from '../../server/stats/window.js';

/** A summary with `n` requests all in the bucket whose upper bound is `bound` seconds. */
function edge(direction: 'inbound' | 'outbound', source: string, destination: string, n: number, failures: number, bound: number): EdgeSummary {
  const latency = emptyLatency();
  latency[LATENCY_BOUNDS_SECONDS.indexOf(bound)] = n;
  return { direction, source, destination, requests: n, failures, latency };
}

test('quantiles interpolate inside the bucket the rank falls in', () => {
  const l = emptyLatency();
  l[1] = 50; // (0.5 ms, 1 ms]
  l[3] = 50; // (2.5 ms, 5 ms]
  assert.equal(quantile(l, 0.5), 0.001);
  assert.ok(Math.abs(quantile(l, 0.75)! - 0.00375) < 1e-12);
  assert.equal(quantile(emptyLatency(), 0.5), null);
  const over = emptyLatency();
  over[LATENCY_BOUNDS_SECONDS.length] = 3;
  assert.equal(quantile(over, 0.99), LATENCY_BOUNDS_SECONDS.at(-1), 'past the last bound: that bound');
});

test('summaries from several agents add up per service and per edge; the callee’s view wins for a service', () => {
  let now = 1_000_000_000;
  const w = new StatsWindow(() => now);
  w.record([edge('outbound', 'web', 'api', 100, 2, 0.005), edge('outbound', 'web', 'db', 10, 0, 0.001)]);
  w.record([edge('outbound', 'batch', 'api', 50, 0, 0.01)]);
  w.record([edge('inbound', 'web', 'api', 98, 1, 0.0025), edge('inbound', 'batch', 'api', 50, 0, 0.0025)]);
  now += 5_000;
  const v = w.view(60);
  assert.equal(v.windowSeconds, 60);
  const api = v.services.find((s) => s.service === 'api')!;
  assert.equal(api.measuredAt, 'inbound');
  assert.equal(api.requests, 148);
  assert.equal(api.failures, 1);
  assert.ok(Math.abs(api.requestsPerSecond - 148 / 60) < 1e-9);
  assert.ok(api.p99Ms! <= 2.5 && api.p50Ms! > 1);
  const db = v.services.find((s) => s.service === 'db')!;
  assert.equal(db.measuredAt, 'outbound', 'db’s own agents sent nothing: its callers’ view');
  const webApi = v.edges.find((e) => e.source === 'web' && e.destination === 'api')!;
  assert.equal(webApi.requests, 100, 'an edge is counted as its caller saw it');
  assert.equal(webApi.failures, 2);
  assert.equal(webApi.successRate, 0.98);
});

test('only the window asked for counts, and slots older than ten minutes are gone', () => {
  let now = 2_000_000_000;
  const w = new StatsWindow(() => now);
  w.record([edge('inbound', 'a', 'b', 10, 0, 0.001)]);
  now += 120_000;
  w.record([edge('inbound', 'a', 'b', 5, 0, 0.001)]);
  assert.equal(w.view(60).services[0]!.requests, 5);
  assert.equal(w.view(600).services[0]!.requests, 15);
  now += 600_000;
  assert.equal(w.view(600).services.length, 0);
  // The ring slot is reused for a new period: the old counts do not leak into it.
  w.record([edge('inbound', 'a', 'b', 1, 0, 0.001)]);
  assert.equal(w.view(600).services[0]!.requests, 1);
});
