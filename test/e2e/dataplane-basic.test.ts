// The data plane, basic path: an app on host A calls an http and a tcp service on host B through
// both agents (A's outbound listener → mTLS → B's inbound listener → the local instance).
// Real server, real agent processes, real sockets; addresses 127.0.2.1–127.0.2.9 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTwoHosts } from '../helpers/two-hosts.js';
import type { TestAgent } from '../helpers/agent.js';
import {
  TRACEPARENT,
  Cleanup,
  agentTails,
  describeResult,
  eofTrailer,
  establishedTo,
  httpRequest,
  probe,
  tcpClient,
  type HeaderEcho,
  type HttpResult,
} from '../helpers/traffic.js';

const TD = 'hostmesh.local';

const A = '127.0.2.1'; // calls web and db; registers api
const B = '127.0.2.2'; // runs web (http) and db (tcp)
const WEB_OUT = 19101; // A's outbound listener for web
const DB_OUT = 19102; // A's outbound listener for db
const API_ID = `spiffe://${TD}/service/api`;

describe('data plane: basic http and tcp through two agents', { timeout: 90_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let web: HeaderEcho;

  const get = (path: string, o: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer; chunks?: Buffer[]; agent?: http.Agent } = {}): Promise<HttpResult> =>
    httpRequest({ host: A, port: WEB_OUT, path, timeoutMs: 5000, ...o });

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    ({ a, b, web } = await startTwoHosts(s, bag, { prefix: 'dp-basic', A, B, webOut: WEB_OUT, dbOut: DB_OUT, meshSpec: { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '2s' } }));
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('an http request reaches the service on the other host and its answer comes back', { timeout: 15_000 }, async () => {
    const r = await get('/hello?x=1');
    assert.equal(r.status, 200, `GET through the mesh: ${describeResult(r)}${agentTails([a, b])}`);
    assert.equal(r.json?.name, 'web-b');
    assert.equal(r.json?.method, 'GET');
    assert.equal(r.json?.url, '/hello?x=1', 'path and query arrive unchanged');
    assert.equal(r.json?.headers['x-hostmesh-source'], API_ID, 'the inbound side names the verified caller');
    assert.equal(r.headers['x-echo-name'], 'web-b', 'response headers come back');

    // A body both ways: content-length and chunked request bodies, a 2 MB response.
    const body = randomBytes(300_000);
    const sha = createHash('sha256').update(body).digest('hex');
    const post = await get('/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(post.status, 200, describeResult(post));
    assert.deepEqual([post.json?.bodyBytes, post.json?.bodySha256], [body.length, sha], 'content-length body arrives intact');
    const chunks = [randomBytes(70_000), randomBytes(1), randomBytes(150_000)];
    const chunked = await get('/upload', { method: 'POST', chunks });
    assert.equal(chunked.status, 200, describeResult(chunked));
    assert.deepEqual(
      [chunked.json?.bodyBytes, chunked.json?.bodySha256],
      [220_001, createHash('sha256').update(Buffer.concat(chunks)).digest('hex')],
      'chunked body arrives intact',
    );
    const big = await get('/big?pad=2000000');
    assert.equal(big.status, 200, describeResult(big));
    assert.equal(big.json?.pad?.length, 2_000_000, 'a 2 MB response arrives whole');

    // Keep-alive: 50 requests over one client connection.
    const keep = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const sockets = new Set<unknown>();
      keep.on('free', (sock) => sockets.add(sock));
      for (let i = 0; i < 50; i++) {
        const r2 = await get(`/k/${i}`, { agent: keep });
        assert.equal(r2.status, 200, `request ${i} on a kept-alive connection: ${describeResult(r2)}`);
        assert.equal(r2.json?.url, `/k/${i}`);
      }
      assert.equal(sockets.size, 1, 'all 50 requests used one client connection');
    } finally {
      keep.destroy();
    }
  });

  test('a tcp service answers through the mesh: bytes both ways, backpressure, half-close', { timeout: 20_000 }, async () => {
    const c = tcpClient(A, DB_OUT);
    try {
      assert.equal(await c.connected, true, 'A listens for db');
      c.socket.write('hello mesh\n');
      const first = await c.waitBytes(11, 5000).catch((e: Error) => assert.fail(`${e.message}${agentTails([a, b])}`));
      assert.equal(first.toString(), 'hello mesh\n');
      // 4 MiB in one go: more than any socket buffer, so both agents must respect backpressure.
      const blob = randomBytes(4 * 1024 * 1024);
      c.socket.write(blob);
      const echoed = await c.waitBytes(11 + blob.length, 15_000);
      assert.ok(echoed.subarray(11, 11 + blob.length).equals(blob), 'the 4 MiB came back byte for byte');
      // Half-close: we end our side; the service still answers, then closes.
      c.socket.end();
      const total = 11 + blob.length;
      const trailer = eofTrailer(total);
      const all = await c.waitBytes(total + trailer.length, 5000);
      assert.equal(all.subarray(total).toString(), trailer, 'the reply sent after our FIN reached us');
      const closed = await Promise.race([c.closed, new Promise<'open'>((r) => setTimeout(() => r('open'), 5000))]);
      assert.notEqual(closed, 'open', 'the connection closes once both sides ended');
      assert.equal(c.received().length, total + trailer.length, 'nothing after the trailer');
    } finally {
      c.socket.destroy();
    }
  });

  test('many app connections cross between the agents as streams of one mTLS connection per service', { timeout: 30_000 }, async () => {
    // 24 keep-alive http connections with requests in flight at once, and 12 tcp connections.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 24 });
    const tcp = Array.from({ length: 12 }, () => tcpClient(A, DB_OUT));
    try {
      const results = await Promise.all(Array.from({ length: 96 }, (_, i) => get(`/many/${i}`, { agent })));
      for (const r of results) assert.equal(r.status, 200, describeResult(r));
      assert.deepEqual(new Set(results.map((r) => r.json?.url)).size, 96, 'each request got its own answer');
      for (const c of tcp) assert.equal(await c.connected, true);
      tcp.forEach((c, i) => c.socket.write(`conn ${i}\n`));
      for (const [i, c] of tcp.entries()) assert.equal((await c.waitBytes(`conn ${i}\n`.length, 5000)).toString(), `conn ${i}\n`, `tcp connection ${i} got its own bytes`);
      // Between A and B's inbound port: one connection for web and one for db, not one per app connection.
      assert.equal(establishedTo(B, 15443), 2, 'established connections to B:15443');
    } finally {
      agent.destroy();
      for (const c of tcp) c.socket.destroy();
    }
  });

  test('the bytes between agents are TLS: B’s inbound port does not speak plain HTTP or TCP', { timeout: 15_000 }, async () => {
    const p = await probe(B, 15443, null, 'GET / HTTP/1.1\r\nHost: web\r\n\r\n', 5000);
    assert.equal(p.tcpConnected, true, `B listens on ${B}:15443 (${p.error ?? ''})`);
    assert.ok(!p.received.startsWith('HTTP/'), `no HTTP answer to plain text: ${JSON.stringify(p.received.slice(0, 80))}`);
    assert.ok(!p.received.includes('web-b'), 'nothing from the service leaks to a plain client');
    assert.equal(p.closed, true, 'the plain connection is closed, not left hanging');
    // And the same port does complete a TLS handshake, presenting web's certificate for its SNI.
    const t = await probe(B, 15443, { servername: `web.${TD}`, ca: s.caPem, rejectUnauthorized: false }, '', 3000);
    assert.equal(t.secureConnected, true, `TLS handshake with B's inbound (${t.error ?? ''})`);
    assert.ok(t.peerCert?.subjectaltname?.includes(`URI:spiffe://${TD}/service/web`), `B presents web's certificate for SNI web.${TD}: ${t.peerCert?.subjectaltname}`);
  });

  test('traceparent and x-request-id are passed through unchanged, or started when absent', { timeout: 15_000 }, async () => {
    const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const given = await get('/trace', { headers: { traceparent: tp, 'x-request-id': 'req-abc-123' } });
    assert.equal(given.status, 200, describeResult(given));
    assert.equal(given.json?.headers.traceparent, tp, 'a traceparent the app sent arrives unchanged');
    assert.equal(given.json?.headers['x-request-id'], 'req-abc-123', 'an x-request-id the app sent arrives unchanged');

    const ids = new Set<string>();
    const reqIds = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const r = await get('/trace');
      assert.equal(r.status, 200, describeResult(r));
      const got = r.json?.headers.traceparent as string | undefined;
      assert.match(got ?? '(none)', TRACEPARENT, 'a traceparent is started when absent, in W3C format');
      const m = TRACEPARENT.exec(got!)!;
      assert.notEqual(m[1], '0'.repeat(32), 'trace id is not all zeros');
      assert.notEqual(m[2], '0'.repeat(16), 'parent id is not all zeros');
      ids.add(m[1]!);
      const rid = r.json?.headers['x-request-id'] as string | undefined;
      assert.ok(rid && rid.length >= 8, `an x-request-id is started when absent: ${rid}`);
      reqIds.add(rid);
    }
    assert.equal(ids.size, 5, 'each request gets its own trace id');
    assert.equal(reqIds.size, 5, 'each request gets its own request id');
  });
});
