// The agent's summaries: each one carries what happened since the previous one, per edge, read from
// the proxy's running totals.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LATENCY_BOUNDS_SECONDS, LATENCY_BUCKETS } from '../../shared/golden.js';
import { createLogger } from '../../shared/log.js';
import type { StatsMsg } from '../../shared/protocol.js';
import { EdgeStats } from '../../agent/metrics/request-metrics.js';
import { StatsSummarizer } from '../../agent/stats/summarizer.js';

test('deltas per edge, failures are 5xx, latency summed over status classes; idle edges are not sent', () => {
  const a = new EdgeStats('outbound', 'web', 'api');
  const b = new EdgeStats('inbound', 'batch', 'web');
  const sent: StatsMsg[] = [];
  const s = new StatsSummarizer(() => [a, b], LATENCY_BOUNDS_SECONDS, (m) => (sent.push(m), true), 10_000, createLogger('test', { level: 'silent' }));
  for (let i = 0; i < 8; i++) a.record(200, 0.0007);
  a.record(503, 0.02);
  a.record(404, 0.0001);
  s.flush();
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.edges.length, 1, 'the edge without traffic is not sent');
  const e = sent[0]!.edges[0]!;
  assert.deepEqual([e.direction, e.source, e.destination, e.requests, e.failures], ['outbound', 'web', 'api', 10, 1]);
  assert.equal(e.latency.length, LATENCY_BUCKETS);
  assert.equal(e.latency[0], 1); // 0.1 ms
  assert.equal(e.latency[1], 8); // 0.7 ms
  assert.equal(e.latency[LATENCY_BOUNDS_SECONDS.indexOf(0.025)], 1); // 20 ms
  s.flush();
  assert.equal(sent.length, 1, 'nothing new: nothing sent');
  a.record(500, 0.0007);
  b.record(200, 0.0007);
  s.flush();
  assert.deepEqual(sent[1]!.edges.map((x) => [x.destination, x.requests, x.failures]), [['api', 1, 1], ['web', 1, 0]]);
});

test('a proxy whose buckets differ from the shared bounds is refused at start', () => {
  assert.throws(() => new StatsSummarizer(() => [], [0.1, 1], () => true, 1000, createLogger('test', { level: 'silent' })), /latency buckets differ/);
});
