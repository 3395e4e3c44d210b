// Observability, the pieces behind tracing, without agents: traceparent parsing (W3C
// trace-context), the tracer's header rewrite, and the OTLP exporter's behaviour when the
// collector is slow, down or refusing: bounded queue, counted drops, never a throw or a wait.
// Loopback 127.0.5.6 only.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Registry } from 'prom-client';
import { createLogger } from '../../shared/log.js';
import { OtlpExporter, SPAN_KIND_CLIENT, toOtlp, type SpanRecord } from '../../agent/observability/otlp-exporter.js';
import { formatTraceparent, parseTraceparent } from '../../agent/observability/trace-context.js';
import { Tracer } from '../../agent/observability/tracer.js';

const IP = '127.0.5.6';
const log = createLogger('test', { level: 'silent', pretty: false });

const span = (i: number): SpanRecord => ({
  service: 'api',
  traceId: 'ab'.repeat(16),
  spanId: (i + 1).toString(16).padStart(16, '0'),
  parentId: null,
  name: 'GET web',
  kind: SPAN_KIND_CLIENT,
  startMs: 1_700_000_000_000.5,
  endMs: 1_700_000_000_002.25,
  attributes: { 'http.response.status_code': 200, 'url.path': '/x' },
  error: false,
});

async function counter(r: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await r.getMetricsAsJSON()).find((x) => x.name === name);
  return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val)).reduce((a, v) => a + v.value, 0);
}

describe('observability: trace context and span export', { timeout: 20_000 }, () => {
  test('traceparent: valid values parse, invalid ones are treated as absent', () => {
    const ok = parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    assert.deepEqual(ok, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7', sampled: true });
    assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')?.sampled, false);
    assert.ok(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra'), 'a later version may add fields');
    for (const bad of [
      '',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', // version ff is invalid
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01', // zero trace id
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', // zero parent id
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', // upper case
      '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x', // 00 has no extra fields
      '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
    ]) assert.equal(parseTraceparent(bad), null, bad);
    assert.equal(formatTraceparent('a'.repeat(32), 'b'.repeat(16), false), `00-${'a'.repeat(32)}-${'b'.repeat(16)}-00`);
  });

  test('the tracer continues a valid trace with its own span id, and starts one otherwise', async () => {
    const reg = new Registry();
    const exp = new OtlpExporter({ endpoint: `http://${IP}:9/v1/traces`, maxQueue: 10 }, reg, log);
    try {
      const t = new Tracer(exp, 1);
      const h = ['host', 'web', 'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'];
      const hop = t.hop(h);
      assert.equal(hop.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
      assert.equal(hop.parentId, '00f067aa0ba902b7');
      assert.equal(h[3], `00-${hop.traceId}-${hop.spanId}-01`, 'the header now names this hop as parent');
      const fresh = ['traceparent', 'garbage'];
      const hop2 = t.hop(fresh);
      assert.equal(hop2.parentId, null);
      assert.match(fresh[1]!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      const never = new Tracer(exp, 0);
      assert.equal(never.hop([]).sampled, false, 'sampleRatio 0: new traces are not recorded');
    } finally {
      await exp.close(100);
    }
  });

  test('OTLP JSON: one resource per service, hex ids, nanosecond strings', () => {
    const doc = toOtlp([span(0), { ...span(1), service: 'web', parentId: '1'.repeat(16), error: true }]) as any;
    assert.equal(doc.resourceSpans.length, 2);
    const s0 = doc.resourceSpans[0].scopeSpans[0].spans[0];
    assert.equal(s0.traceId, 'ab'.repeat(16));
    assert.equal(s0.startTimeUnixNano, '1700000000000500000');
    assert.equal(s0.endTimeUnixNano, '1700000000002250000');
    assert.equal(s0.parentSpanId, undefined);
    assert.deepEqual(s0.attributes[0], { key: 'http.response.status_code', value: { intValue: '200' } });
    assert.equal(doc.resourceSpans[1].scopeSpans[0].spans[0].status.code, 2);
  });

  test('a full queue drops new spans (counted); a collector that is down or says 500 costs the batch, not a throw', async () => {
    const reg = new Registry();
    // Nothing listens on this port.
    const closed = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, IP, () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const exp = new OtlpExporter({ endpoint: `http://${IP}:${closed}/v1/traces`, maxQueue: 5, batchSize: 100, flushMs: 50 }, reg, log);
    for (let i = 0; i < 12; i++) exp.push(span(i));
    assert.equal(await counter(reg, 'hostmesh_trace_spans_dropped_total', { reason: 'queue_full' }), 7);
    await exp.close(3000);
    assert.equal(await counter(reg, 'hostmesh_trace_spans_dropped_total', { reason: 'export_failed' }), 5);
    exp.push(span(99));
    assert.equal(await counter(reg, 'hostmesh_trace_spans_dropped_total', { reason: 'queue_full' }), 8, 'after close, spans are dropped');

    let posts = 0;
    const srv = http.createServer((req, res) => {
      posts++;
      req.resume();
      req.on('end', () => res.writeHead(posts === 1 ? 500 : 200).end());
    });
    await new Promise<void>((r) => srv.listen(0, IP, r));
    try {
      const reg2 = new Registry();
      const url = `http://${IP}:${(srv.address() as net.AddressInfo).port}/v1/traces`;
      const exp2 = new OtlpExporter({ endpoint: url, maxQueue: 100, batchSize: 3, flushMs: 50 }, reg2, log);
      for (let i = 0; i < 7; i++) exp2.push(span(i));
      await exp2.close(3000);
      assert.equal(posts, 3, 'batches of at most 3');
      assert.equal(await counter(reg2, 'hostmesh_trace_spans_dropped_total', { reason: 'export_failed' }), 3, 'the batch the collector refused');
      assert.equal(await counter(reg2, 'hostmesh_trace_spans_exported_total'), 4);
    } finally {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  test('a collector that never answers holds one POST, not the caller', async () => {
    const hang = net.createServer(() => undefined); // accepts, never answers
    await new Promise<void>((r) => hang.listen(0, IP, r));
    const sockets = new Set<net.Socket>();
    hang.on('connection', (s) => sockets.add(s));
    try {
      const reg = new Registry();
      const exp = new OtlpExporter({ endpoint: `http://${IP}:${(hang.address() as net.AddressInfo).port}/v1/traces`, maxQueue: 1000, batchSize: 10, flushMs: 20, timeoutMs: 300 }, reg, log);
      const t0 = performance.now();
      for (let i = 0; i < 500; i++) exp.push(span(i));
      assert.ok(performance.now() - t0 < 200, 'push never waits');
      await exp.close(2000);
      assert.ok(performance.now() - t0 < 3000, 'close is bounded');
      assert.ok((await counter(reg, 'hostmesh_trace_spans_dropped_total')) >= 10, 'timed-out batches are counted');
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => hang.close(() => r()));
    }
  });
});
