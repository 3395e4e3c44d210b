// Observability, traces and access logs: traceparent arrives at the service with the caller's trace
// id (or a new one), each agent exports its span to an OTLP collector with the right parent, and
// access log lines appear with their fields when the Mesh or the Service turns them on, and not
// otherwise. Real server, real agent processes, a fake collector; addresses 127.0.5.3–127.0.5.5 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { scrape } from '../helpers/prom.js';
import { REPO_ROOT, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { startTwoHosts } from '../helpers/two-hosts.js';
import { waitFor, type TestAgent } from '../helpers/agent.js';
import { agentTails, applyAndWait, Cleanup, describeResult, httpRequest, sleep, tcpClient, TRACEPARENT, type HeaderEcho } from '../helpers/traffic.js';

const A = '127.0.5.3'; // api: calls web (http) and db (tcp); access log to a file
const B = '127.0.5.4'; // web and db; access log to its stdout
const C = '127.0.5.5'; // the OTLP collector
const WEB_OUT = 19503;
const DB_OUT = 19504;
const MESH = { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '2s' };

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: Record<string, unknown> }>;
  service: string;
}

/** Records every span POSTed to /v1/traces (OTLP/HTTP JSON). */
async function startCollector(ip: string): Promise<{ url: string; spans: OtlpSpan[]; posts: number; close(): Promise<void> }> {
  const c = { url: '', spans: [] as OtlpSpan[], posts: 0, close: async () => undefined as void };
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      c.posts++;
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(400).end();
        return;
      }
      const doc = JSON.parse(body) as { resourceSpans: Array<{ resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
      for (const rs of doc.resourceSpans) {
        const service = String(rs.resource.attributes.find((a) => a.key === 'service.name')?.value['stringValue']);
        for (const ss of rs.scopeSpans) for (const sp of ss.spans) c.spans.push({ ...sp, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, ip, resolve));
  c.url = `http://${ip}:${(server.address() as { port: number }).port}/v1/traces`;
  c.close = () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve())));
  return c;
}

const attr = (s: OtlpSpan, key: string): unknown => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v ? (v['stringValue'] ?? v['intValue']) : undefined;
};

/** Access log lines in text (JSON lines; on an agent's stdout, those marked `"log":"access"`). */
function accessLines(text: string): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line) as Record<string, any>;
    if (o['log'] === 'access' || o['direction'] !== undefined) out.push(o);
  }
  return out;
}

describe('observability: traces and access logs through two agents', { timeout: 60_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let web: HeaderEcho;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let logFile: string;
  const fileLines = (): Array<Record<string, any>> => (fs.existsSync(logFile) ? accessLines(fs.readFileSync(logFile, 'utf8')) : []);
  const get = (p: string, headers: http.OutgoingHttpHeaders = {}) => httpRequest({ host: A, port: WEB_OUT, path: p, headers: { host: 'web.example', ...headers }, timeoutMs: 5000 });

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    collector = await startCollector(C);
    bag.add(() => collector.close());
    const dir = tempDir('hostmesh-obs-log-');
    bag.add(() => fs.rmSync(dir, { recursive: true, force: true }));
    logFile = path.join(dir, 'logs', 'access.log');
    const tracing = { otlpEndpoint: collector.url, sampleRatio: 1 };
    ({ a, b, web } = await startTwoHosts(s, bag, {
      prefix: 'obs-t',
      A,
      B,
      webOut: WEB_OUT,
      dbOut: DB_OUT,
      meshSpec: MESH,
      extra: { a: { tracing, accessLog: { path: logFile } }, b: { tracing } },
    }));
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('the caller’s trace id reaches the service; each agent exports its span, the inbound one a child of the outbound one', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const appSpan = '00f067aa0ba902b7';
    const r = await get('/traced?x=1', { traceparent: `00-${traceId}-${appSpan}-01` });
    assert.equal(r.status, 200, describeResult(r) + agentTails([a, b]));
    const seen = TRACEPARENT.exec(String(r.json?.headers.traceparent));
    assert.ok(seen, `traceparent at the service: ${r.json?.headers.traceparent}`);
    assert.equal(seen[1], traceId, 'same trace id');
    assert.notEqual(seen[2], appSpan, 'the parent the service sees is the inbound agent’s span');
    assert.equal(seen[3], '01');

    const spans = await waitFor('both spans at the collector', () => {
      const mine = collector.spans.filter((x) => x.traceId === traceId);
      return mine.length >= 2 ? mine : null;
    });
    assert.equal(spans.length, 2, JSON.stringify(spans));
    const client = spans.find((x) => x.kind === 3)!;
    const server = spans.find((x) => x.kind === 2)!;
    assert.ok(client && server, 'a CLIENT span (agent A) and a SERVER span (agent B)');
    assert.equal(client.parentSpanId, appSpan, 'A’s span is a child of the app’s');
    assert.equal(server.parentSpanId, client.spanId, 'B’s span is a child of A’s');
    assert.equal(seen[2], server.spanId, 'the service’s parent is B’s span');
    assert.equal(client.service, 'api');
    assert.equal(server.service, 'web');
    assert.equal(attr(client, 'http.response.status_code'), '200');
    assert.equal(attr(server, 'url.path'), '/traced', 'no query string in spans');
  });

  test('a request without traceparent gets a new trace, started by the calling agent', async () => {
    const r = await get('/fresh');
    assert.equal(r.status, 200, describeResult(r));
    const seen = TRACEPARENT.exec(String(r.json?.headers.traceparent));
    assert.ok(seen, `traceparent at the service: ${r.json?.headers.traceparent}`);
    const traceId = seen[1]!;
    assert.notEqual(traceId, '0'.repeat(32));
    const spans = await waitFor('both spans', () => {
      const mine = collector.spans.filter((x) => x.traceId === traceId);
      return mine.length >= 2 ? mine : null;
    });
    const client = spans.find((x) => x.kind === 3)!;
    const server = spans.find((x) => x.kind === 2)!;
    assert.equal(client.parentSpanId ?? '', '', 'the outbound span is the root');
    assert.equal(server.parentSpanId, client.spanId);
    assert.equal(seen[2], server.spanId);
  });

  test('a trace the caller did not sample is propagated but not exported', async () => {
    const traceId = 'aaaabbbbccccddddeeeeffff00001111';
    const r = await get('/unsampled', { traceparent: `00-${traceId}-1111222233334444-00` });
    assert.equal(r.status, 200, describeResult(r));
    const seen = TRACEPARENT.exec(String(r.json?.headers.traceparent));
    assert.equal(seen?.[1], traceId);
    assert.equal(seen?.[3], '00', 'the sampled flag stays off');
    const before = collector.posts;
    await waitFor('another export round', () => collector.posts > before || collector.spans.length > 0, 3000).catch(() => undefined);
    await sleep(1200); // one flush interval
    assert.equal(collector.spans.filter((x) => x.traceId === traceId).length, 0);
  });

  test('access logs: none while off; one line per request (both sides) and per tcp connection when the Mesh turns them on', async () => {
    await get('/quiet');
    await sleep(300);
    assert.equal(fileLines().length, 0, 'no lines while access logs are off');
    assert.equal(accessLines(b.output()).length, 0, 'none on B either');

    await applyAndWait(s, [{ kind: 'Mesh', name: 'default', spec: { ...MESH, accessLog: true } }], [a, b]);
    const traceId = '0123456789abcdef0123456789abcdef';
    const r = await get('/logged/7?secret=x', { traceparent: `00-${traceId}-0123456789abcdef-01`, 'x-request-id': 'rid-42' });
    assert.equal(r.status, 200, describeResult(r));
    const c = tcpClient(A, DB_OUT);
    assert.equal(await c.connected, true);
    c.socket.write('ping\n');
    await c.waitBytes(5, 5000);
    c.socket.end();
    await c.closed;

    const outLine = await waitFor('A’s http line', () => fileLines().find((l) => l['path'] === '/logged/7'));
    assert.equal(outLine['direction'], 'outbound');
    assert.equal(outLine['protocol'], 'http');
    assert.equal(outLine['source'], 'api');
    assert.equal(outLine['destination'], 'web');
    assert.equal(outLine['method'], 'GET');
    assert.equal(outLine['authority'], 'web.example');
    assert.equal(outLine['status'], 200);
    assert.equal(outLine['trace_id'], traceId);
    assert.equal(outLine['request_id'], 'rid-42');
    assert.equal(outLine['upstream_host'], `${B}:15443`);
    assert.equal(outLine['upstream_instance'], 'obs-t-b');
    assert.ok(typeof outLine['duration_ms'] === 'number' && outLine['duration_ms'] > 0);
    assert.ok(outLine['bytes_received'] > 0, 'the request head counts');
    assert.ok(outLine['bytes_sent'] >= Buffer.byteLength(r.text), `bytes_sent ${outLine['bytes_sent']} ≥ the body ${Buffer.byteLength(r.text)}`);
    assert.ok(!Number.isNaN(Date.parse(outLine['time'])), 'ISO time');
    assert.ok(!JSON.stringify(outLine).includes('secret'), 'the query string is not logged');

    const inLine = await waitFor('B’s http line', () => accessLines(b.output()).find((l) => l['path'] === '/logged/7'));
    assert.equal(inLine['direction'], 'inbound');
    assert.equal(inLine['source'], 'api');
    assert.equal(inLine['destination'], 'web');
    assert.equal(inLine['status'], 200);
    assert.equal(inLine['trace_id'], traceId, 'one trace id on both sides');
    assert.equal(inLine['upstream_host'], `${B}:18080`);

    const tcpLine = await waitFor('A’s tcp line', () => fileLines().find((l) => l['protocol'] === 'tcp'));
    assert.deepEqual([tcpLine['direction'], tcpLine['source'], tcpLine['destination'], tcpLine['bytes_received']], ['outbound', 'api', 'db', 5]);
    assert.ok(tcpLine['bytes_sent'] >= 5);
    await waitFor('B’s tcp line', () => accessLines(b.output()).find((l) => l['protocol'] === 'tcp' && l['destination'] === 'db'));
  });

  test('access logs: a Service’s accessLog: false wins over the Mesh’s true', async () => {
    await applyAndWait(s, [{ kind: 'Service', name: 'web', spec: { protocol: 'http', port: 18080, accessLog: false } }], [a, b]);
    const before = fileLines().length;
    const beforeB = accessLines(b.output()).length;
    const r = await get('/not-logged');
    assert.equal(r.status, 200, describeResult(r));
    await sleep(500);
    assert.equal(fileLines().length, before, 'no new line on A');
    assert.equal(accessLines(b.output()).length, beforeB, 'no new line on B');
    assert.ok(web.seen.some((x) => x.url === '/not-logged'), 'the request did go through');
  });

  test('the Grafana dashboard parses, and every metric it queries is served by a real agent', async () => {
    const dash = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'dashboards/hostmesh-agent.json'), 'utf8')) as {
      uid: string;
      templating: { list: Array<{ name: string; query?: string | { query: string } }> };
      panels: Array<{ id: number; type: string; title: string; gridPos: object; targets?: Array<{ expr: string; refId: string }> }>;
    };
    assert.equal(dash.uid, 'hostmesh-agent');
    const ids = dash.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    for (const v of dash.templating.list) if (typeof v.query === 'object') exprs.push(v.query.query);
    assert.ok(exprs.length >= 20, `${exprs.length} queries`);
    for (const e of exprs) assert.equal(e.split('(').length, e.split(')').length, `balanced parentheses: ${e}`);
    const golden = exprs.join('\n');
    for (const q of ['0.50', '0.95', '0.99']) assert.ok(golden.includes(`histogram_quantile(${q},`), `p${q.slice(2)} panel`);
    assert.ok(golden.includes('response_code_class!="5xx"'), 'success-rate panel');

    const m = await scrape(a.adminUrl);
    const names = new Set<string>();
    for (const e of exprs) for (const n of e.match(/\b(?:hostmesh|process|nodejs)_[a-z0-9_]+/g) ?? []) names.add(n);
    assert.ok(names.size >= 15, `${names.size} metric names`);
    for (const n of names) {
      const base = n.replace(/_(bucket|sum|count)$/, '');
      const family = m.get(n) ?? (m.get(base)?.type === 'HISTOGRAM' ? m.get(base) : undefined);
      assert.ok(family, `${n} is served by the agent's /metrics`);
    }
  });
});
