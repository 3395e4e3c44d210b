// Observability, metrics: after a known set of requests through the mesh (some answered 500 by the
// service, some denied by an AccessPolicy on the far side, one tcp connection), both agents'
// /metrics say exactly that. The text is parsed with a Prometheus parser, not matched.
// Real server, real agent processes; addresses 127.0.5.1–127.0.5.2 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTwoHosts } from '../helpers/two-hosts.js';
import { waitFor, type TestAgent } from '../helpers/agent.js';
import { histogram, sampleSum, samples, scrape, fetchText, type Metrics } from '../helpers/prom.js';
import { agentTails, Cleanup, tcpClient, type HeaderEcho } from '../helpers/traffic.js';

const TD = 'hostmesh.local';
const A = '127.0.5.1'; // api: calls web (http) and db (tcp)
const B = '127.0.5.2'; // web and db
const WEB_OUT = 19501;
const DB_OUT = 19502;
const OK = 12;
const FAILED = 4; // fewer than outlier detection's 5 consecutive errors: the endpoint stays in
const DENIED = 3;

/** One request on its own connection with `Connection: close`; returns the status and every byte read. */
function rawRequest(host: string, port: number, text: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let got = Buffer.alloc(0);
    s.on('connect', () => s.write(text));
    s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    s.on('error', reject);
    s.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got.toString('latin1'));
      if (!m) reject(new Error(`no HTTP answer: ${JSON.stringify(got.toString('latin1').slice(0, 200))}`));
      else resolve({ status: Number(m[1]), bytes: got.length });
    });
  });
}

const request = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n`;

describe('observability: agent metrics agree with the traffic sent', { timeout: 60_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let web: HeaderEcho;
  let sentBytes = 0;
  let receivedBytes = 0;
  let tcpSent = 0;
  let tcpReceived = 0;

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    ({ a, b, web } = await startTwoHosts(s, bag, {
      prefix: 'obs-m',
      A,
      B,
      webOut: WEB_OUT,
      dbOut: DB_OUT,
      meshSpec: { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '2s' },
      resources: [{ kind: 'AccessPolicy', name: 'web', spec: { service: 'web', rules: [{ from: ['*'], action: 'deny', http: { paths: ['/admin/*'] } }] } }],
    }));

    const send = async (path: string, want: number): Promise<void> => {
      const text = request(path);
      const r = await rawRequest(A, WEB_OUT, text);
      assert.equal(r.status, want, `${path}${agentTails([a, b])}`);
      sentBytes += Buffer.byteLength(text);
      receivedBytes += r.bytes;
    };
    for (let i = 0; i < OK; i++) await send(`/ok/${i}?q=${i}`, 200);
    web.setStatus(500);
    for (let i = 0; i < FAILED; i++) await send(`/fail/${i}`, 500);
    web.setStatus(null);
    for (let i = 0; i < DENIED; i++) await send(`/admin/${i}`, 403);

    const c = tcpClient(A, DB_OUT);
    assert.equal(await c.connected, true);
    const payload = Buffer.alloc(10_000, 7);
    c.socket.write(payload);
    await c.waitBytes(payload.length, 5000);
    c.socket.end();
    await c.closed;
    tcpSent = payload.length;
    tcpReceived = c.received().length;
  }, { timeout: 40_000 });

  after(() => bag.run());

  /** Metrics once every connection of the test is closed on both agents (closes are asynchronous). */
  const settled = async (agent: TestAgent, direction: string, service: string, protocol: string): Promise<Metrics> =>
    waitFor(`${agent.spec.name}: ${direction} ${service} connections closed`, async () => {
      const m = await scrape(agent.adminUrl);
      return sampleSum(m, 'hostmesh_tcp_connections_active', { direction, service, protocol }) === 0 ? m : null;
    }, 5000);

  test('the exposition is valid Prometheus text, and names follow the conventions', async () => {
    const r = await fetchText(`${a.adminUrl}/metrics`);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    const m = await scrape(a.adminUrl);
    for (const f of m.values()) {
      if (!f.name.startsWith('hostmesh_')) continue;
      if (f.type === 'COUNTER') assert.match(f.name, /_total$/, `counter ${f.name} ends in _total`);
      else assert.doesNotMatch(f.name, /_total$/, `${f.type} ${f.name} does not end in _total`);
      assert.doesNotMatch(f.name, /_(ms|milliseconds|kb|mb)(_|$)/, `${f.name} uses base units`);
      for (const sample of f.metrics) {
        for (const k of Object.keys(sample.labels ?? {})) assert.ok(!['path', 'url', 'port', 'instance_port'].includes(k), `${f.name} has no ${k} label`);
      }
    }
    assert.ok(m.has('process_cpu_seconds_total'), 'process metrics are there too');
  });

  test('requests, codes, classes and latency on the calling agent (outbound)', async () => {
    const m = await settled(a, 'outbound', 'web', 'http');
    const edge = { direction: 'outbound', source_service: 'api', destination_service: 'web' };
    assert.equal(sampleSum(m, 'hostmesh_requests_total', { ...edge, response_code: '200', response_code_class: '2xx' }), OK);
    assert.equal(sampleSum(m, 'hostmesh_requests_total', { ...edge, response_code: '500', response_code_class: '5xx' }), FAILED);
    assert.equal(sampleSum(m, 'hostmesh_requests_total', { ...edge, response_code: '403', response_code_class: '4xx' }), DENIED);
    assert.equal(sampleSum(m, 'hostmesh_requests_total', edge), OK + FAILED + DENIED, 'nothing else was counted');
    for (const [cls, n] of [['2xx', OK], ['5xx', FAILED], ['4xx', DENIED]] as const) {
      const h = histogram(m, 'hostmesh_request_duration_seconds', { ...edge, response_code_class: cls });
      assert.equal(h.count, n, `${cls} histogram count`);
      assert.equal(h.buckets['+Inf'], n, `${cls} +Inf bucket`);
      assert.ok(h.sum > 0 && h.sum < n * 5, `${cls} sum ${h.sum}`);
      const les = Object.keys(h.buckets).filter((k) => k !== '+Inf').sort((x, y) => Number(x) - Number(y));
      for (let i = 1; i < les.length; i++) assert.ok(h.buckets[les[i]!]! >= h.buckets[les[i - 1]!]!, 'buckets are cumulative');
    }
    // One app connection per request; bytes to the byte.
    const conn = { direction: 'outbound', service: 'web', protocol: 'http' };
    assert.equal(sampleSum(m, 'hostmesh_tcp_connections_opened_total', conn), OK + FAILED + DENIED);
    assert.equal(sampleSum(m, 'hostmesh_tcp_bytes_total', { ...conn, flow: 'in' }), sentBytes, 'bytes from the app');
    assert.equal(sampleSum(m, 'hostmesh_tcp_bytes_total', { ...conn, flow: 'out' }), receivedBytes, 'bytes to the app');
    // The endpoints of each upstream, by state.
    assert.equal(sampleSum(m, 'hostmesh_upstream_endpoints', { service: 'web', state: 'healthy' }), 1);
    assert.equal(sampleSum(m, 'hostmesh_upstream_endpoints', { service: 'web', state: 'unhealthy' }), 0);
    assert.equal(sampleSum(m, 'hostmesh_upstream_endpoints', { service: 'web', state: 'ejected' }), 0);
    assert.equal(sampleSum(m, 'hostmesh_upstream_endpoints', { service: 'db', state: 'healthy' }), 1);
  });

  test('requests, denials and connections on the serving agent (inbound)', async () => {
    const m = await settled(b, 'inbound', 'db', 'tcp');
    const edge = { direction: 'inbound', source_service: 'api', destination_service: 'web' };
    assert.equal(sampleSum(m, 'hostmesh_requests_total', { ...edge, response_code: '200' }), OK);
    assert.equal(sampleSum(m, 'hostmesh_requests_total', { ...edge, response_code: '500' }), FAILED);
    assert.equal(sampleSum(m, 'hostmesh_requests_total', { ...edge, response_code: '403' }), DENIED);
    assert.equal(sampleSum(m, 'hostmesh_requests_total', edge), OK + FAILED + DENIED);
    assert.equal(histogram(m, 'hostmesh_request_duration_seconds', { ...edge, response_code_class: '2xx' }).count, OK);
    assert.equal(histogram(m, 'hostmesh_request_duration_seconds', { ...edge, response_code_class: '5xx' }).count, FAILED);
    assert.equal(histogram(m, 'hostmesh_request_duration_seconds', { ...edge, response_code_class: '4xx' }).count, DENIED);
    assert.equal(sampleSum(m, 'hostmesh_access_denials_total', { service: 'web', mode: 'enforce' }), DENIED);
    // Agent-to-agent connections are pooled: at least one, far fewer than requests.
    const opened = sampleSum(m, 'hostmesh_tcp_connections_opened_total', { direction: 'inbound', service: 'web', protocol: 'http' });
    assert.ok(opened >= 1 && opened < OK + FAILED + DENIED, `mesh connections opened: ${opened}`);
    assert.ok(sampleSum(m, 'hostmesh_tcp_bytes_total', { direction: 'inbound', service: 'web', protocol: 'http', flow: 'in' }) > 0);
    // The tcp service: one connection, its bytes.
    const db = { direction: 'inbound', service: 'db', protocol: 'tcp' };
    assert.equal(sampleSum(m, 'hostmesh_tcp_connections_opened_total', db), 1);
    const ma = await settled(a, 'outbound', 'db', 'tcp');
    const dbA = { direction: 'outbound', service: 'db', protocol: 'tcp' };
    assert.equal(sampleSum(ma, 'hostmesh_tcp_connections_opened_total', dbA), 1);
    assert.equal(sampleSum(ma, 'hostmesh_tcp_bytes_total', { ...dbA, flow: 'in' }), tcpSent);
    assert.equal(sampleSum(ma, 'hostmesh_tcp_bytes_total', { ...dbA, flow: 'out' }), tcpReceived);
    // No request metric ever carries a path.
    for (const sample of samples(m, 'hostmesh_requests_total')) assert.deepEqual(Object.keys(sample.labels ?? {}).sort(), ['destination_service', 'direction', 'response_code', 'response_code_class', 'source_service']);
  });

  test('config revision, certificate expiry per identity, and reconnects to the server', async () => {
    for (const x of [a, b]) {
      // The revision of the snapshot the agent applied (the server pushes a host only when its slice changes).
      const rev = (await x.configDump()).appliedRevision as number;
      assert.ok(rev > 0);
      const m = await waitFor(`${x.spec.name} at revision ${rev}`, async () => {
        const mm = await scrape(x.adminUrl);
        return sampleSum(mm, 'hostmesh_agent_config_revision') === rev ? mm : null;
      });
      const now = Date.now() / 1000;
      for (const id of x === a ? ['service/api'] : ['service/web', 'service/db']) {
        const exp = sampleSum(m, 'hostmesh_agent_cert_expiry_timestamp_seconds', { identity: `spiffe://${TD}/${id}` });
        assert.ok(exp > now + 50 * 60 && exp < now + 61 * 60, `${id} expires in about an hour (certTTL 1h): ${exp - now} s`);
      }
      assert.equal(sampleSum(m, 'hostmesh_agent_connected'), 1);
      assert.equal(sampleSum(m, 'hostmesh_agent_reconnects_total'), 0);
    }
    await s.restart();
    await waitFor('A reconnected after the server restart', async () => {
      const m = await scrape(a.adminUrl);
      return sampleSum(m, 'hostmesh_agent_reconnects_total') >= 1 && sampleSum(m, 'hostmesh_agent_connected') === 1;
    }, 15_000);
  });
});
