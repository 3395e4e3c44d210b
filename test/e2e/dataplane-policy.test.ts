// AccessPolicy at the inbound listener, end to end: the mesh default (deny), rules by source
// service, method and path, deny beating allow, path normalization that cannot be walked around,
// forged identity headers, audit mode, tcp denial. Addresses 127.0.2.20–127.0.2.29 only.
//
// Note: an AccessPolicy lives in the callee's slice (here host B), so after applying one we wait
// for B's revision, not the caller's (whose slice does not change and is not pushed).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createJoinToken, startTestAgent, waitReady, type TestAgent } from '../helpers/agent.js';
import {
  Cleanup,
  agentTails,
  apply,
  applyAndWait,
  describeResult,
  httpRequest,
  meshError,
  probe,
  sleep,
  startHeaderEcho,
  startTcpEcho,
  tcpClient,
  waitEndpoints,
  type HeaderEcho,
  type HttpResult,
  type TcpEcho,
} from '../helpers/traffic.js';

const TD = 'hostmesh.local';
const A = '127.0.2.21'; // registers api; calls web and db
const B = '127.0.2.22'; // runs web (http) and db (tcp)
const C = '127.0.2.23'; // registers batch; calls web
const WEB_OUT_A = 19111;
const DB_OUT_A = 19112;
const WEB_OUT_C = 19113;
const API_ID = `spiffe://${TD}/service/api`;

const WEB_POLICY_RULES = [
  { from: ['api'], action: 'allow', http: { methods: ['GET'], paths: ['/public/*'] } },
  { from: ['*'], action: 'deny', http: { paths: ['/admin/*'] } },
  // Deny beats allow: this one overlaps the allow rule above.
  { from: ['*'], action: 'deny', http: { paths: ['/public/secret/*'] } },
];

describe('data plane: access policy', { timeout: 120_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let c: TestAgent;
  let web: HeaderEcho;
  let db: TcpEcho;

  const fromApi = (path: string, method = 'GET', headers: http.OutgoingHttpHeaders = {}): Promise<HttpResult> =>
    httpRequest({ host: A, port: WEB_OUT_A, path, method, headers, timeoutMs: 5000 });
  const fromBatch = (path: string, method = 'GET', headers: http.OutgoingHttpHeaders = {}): Promise<HttpResult> =>
    httpRequest({ host: C, port: WEB_OUT_C, path, method, headers, timeoutMs: 5000 });

  /** The request is answered 403 by the mesh with this reason, and the service never saw it. */
  const assertDenied = async (what: string, send: () => Promise<HttpResult>, reason: string | RegExp): Promise<void> => {
    const before = web.requests;
    const r = await send();
    assert.equal(r.status, 403, `${what}: denied with 403: ${describeResult(r)}`);
    if (typeof reason === 'string') assert.equal(meshError(r), reason, `${what}: reason code`);
    else assert.match(meshError(r) ?? '(none)', reason, `${what}: reason code`);
    assert.equal(web.requests, before, `${what}: the service never saw the request`);
  };
  const assertAllowed = async (what: string, send: () => Promise<HttpResult>): Promise<HttpResult> => {
    const r = await send();
    const hint =
      r.status === 403 && meshError(r) === 'RBAC_DEFAULT_DENY'
        ? ' (hint: if the policy was changed while a pooled connection from the caller was open, the inbound side may still be deciding with the policy in force when that connection was accepted)'
        : '';
    assert.equal(r.status, 200, `${what}: allowed: ${describeResult(r)}${hint}`);
    assert.equal(r.json?.name, 'web-b');
    return r;
  };
  /**
   * A tcp connection through A: 'data' when the bytes come back (allowed), 'eof' when the mesh ends
   * or resets it (denied), 'hang' when neither happens within 3 s.
   */
  const tcpTry = async (): Promise<{ echoed: boolean; received: number; outcome: 'data' | 'eof' | 'hang' }> => {
    const t = tcpClient(A, DB_OUT_A);
    let timer: NodeJS.Timeout | undefined;
    try {
      if (!(await t.connected)) return { echoed: false, received: 0, outcome: 'eof' };
      t.socket.write('ping\n');
      const outcome = await Promise.race([
        t.ended.then(() => 'eof' as const),
        t.waitBytes(5, 3000).then(() => 'data' as const, () => 'eof' as const),
        new Promise<'hang'>((r) => (timer = setTimeout(() => r('hang'), 3500))),
      ]);
      const got = t.received();
      return { echoed: got.toString() === 'ping\n', received: got.length, outcome: got.length > 0 ? 'data' : outcome };
    } finally {
      clearTimeout(timer);
      t.socket.destroy();
    }
  };

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    await apply(s, [
      { kind: 'Mesh', name: 'default', spec: { defaultAccess: 'deny', certTTL: '1h', disconnectGracePeriod: '2s' } },
      { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 18080 } },
      { kind: 'Service', name: 'db', spec: { protocol: 'tcp', port: 18090 } },
      { kind: 'Service', name: 'api', spec: { protocol: 'http', port: 18081 } },
      { kind: 'Service', name: 'batch', spec: { protocol: 'http', port: 18082 } },
    ]);
    web = await startHeaderEcho(B, 18080, 'web-b');
    bag.add(() => web.close());
    db = await startTcpEcho(B, 18090);
    bag.add(() => db.close());
    const api = await startHeaderEcho(A, 18081, 'api-a');
    bag.add(() => api.close());
    const batch = await startHeaderEcho(C, 18082, 'batch-c');
    bag.add(() => batch.close());

    const token = await createJoinToken(s);
    b = await startTestAgent(s, {
      name: 'dp-policy-b',
      ip: B,
      token,
      services: [
        { name: 'web', port: 18080, host: B, protocol: 'http' },
        { name: 'db', port: 18090, host: B, protocol: 'tcp' },
      ],
    });
    bag.add(() => b.cleanup());
    a = await startTestAgent(s, {
      name: 'dp-policy-a',
      ip: A,
      token,
      services: [{ name: 'api', port: 18081, host: A, protocol: 'http' }],
      upstreams: [
        { service: 'web', localPort: WEB_OUT_A, bind: A },
        { service: 'db', localPort: DB_OUT_A, bind: A },
      ],
    });
    bag.add(() => a.cleanup());
    c = await startTestAgent(s, {
      name: 'dp-policy-c',
      ip: C,
      token,
      services: [{ name: 'batch', port: 18082, host: C, protocol: 'http' }],
      upstreams: [{ service: 'web', localPort: WEB_OUT_C, bind: C }],
    });
    bag.add(() => c.cleanup());
    await Promise.all([a, b, c].map((x) => waitReady(x)));
    await Promise.all([waitEndpoints(a, 'web', 1), waitEndpoints(a, 'db', 1), waitEndpoints(c, 'web', 1)]);
  }, { timeout: 45_000 });

  after(() => bag.run());

  test('default deny: nothing passes, http or tcp, until an allow rule exists', { timeout: 20_000 }, async () => {
    await assertDenied('GET /public/x with no policy', () => fromApi('/public/x'), 'RBAC_DEFAULT_DENY');
    await assertDenied('POST /anything with no policy', () => fromApi('/anything', 'POST'), 'RBAC_DEFAULT_DENY');
    const conns = db.connections;
    const t = await tcpTry();
    assert.equal(t.received, 0, 'a denied tcp connection gets no data');
    assert.equal(t.outcome, 'eof', 'a denied tcp connection is closed (EOF or reset), not left hanging');
    assert.equal(db.connections, conns, 'the tcp service never saw the denied connection');

    await applyAndWait(
      s,
      [
        { kind: 'AccessPolicy', name: 'web', spec: { service: 'web', rules: WEB_POLICY_RULES } },
        { kind: 'AccessPolicy', name: 'db', spec: { service: 'db', rules: [{ from: ['api'], action: 'allow' }] } },
      ],
      [b],
    );
    const r = await assertAllowed('GET /public/x once allowed', () => fromApi('/public/x'));
    assert.equal(r.json?.url, '/public/x');
    const t2 = await tcpTry();
    assert.equal(t2.echoed, true, `tcp allowed for api: ${JSON.stringify(t2)}${agentTails([a, b])}`);
  });

  test('method/path rules deny exactly what they say; deny beats allow; rules are per source', { timeout: 20_000 }, async () => {
    await assertAllowed('GET /public/x', () => fromApi('/public/x'));
    await assertAllowed('GET /public/a/b/c', () => fromApi('/public/a/b/c'));
    await assertDenied('POST /public/x (method not allowed)', () => fromApi('/public/x', 'POST'), 'RBAC_DEFAULT_DENY');
    await assertDenied('DELETE /public/x', () => fromApi('/public/x', 'DELETE'), 'RBAC_DEFAULT_DENY');
    await assertDenied('GET /admin/x (deny rule)', () => fromApi('/admin/x'), 'RBAC_DENY_RULE');
    await assertDenied('GET /admin (the directory itself)', () => fromApi('/admin'), /^RBAC_(DENY_RULE|DEFAULT_DENY)$/);
    await assertDenied('GET /other (no rule: default deny)', () => fromApi('/other'), 'RBAC_DEFAULT_DENY');
    await assertDenied('GET /public/secret/x (deny beats allow)', () => fromApi('/public/secret/x'), 'RBAC_DENY_RULE');
    await assertDenied('GET /Public/x (paths are case-sensitive)', () => fromApi('/Public/x'), 'RBAC_DEFAULT_DENY');
    // batch is not named by the allow rule.
    await assertDenied('batch: GET /public/x', () => fromBatch('/public/x'), 'RBAC_DEFAULT_DENY');
    await assertDenied('batch: GET /admin/x', () => fromBatch('/admin/x'), 'RBAC_DENY_RULE');
  });

  test('path tricks do not get around a path rule, and the service never sees them', { timeout: 30_000 }, async () => {
    const seenBefore = web.seen.length;
    // Each normalizes to a path under /admin, so the deny rule (not just the default) must decide:
    // a proxy that compared the raw path would fall through to the default or, for the ones under
    // /public/, to the allow rule.
    const denied = ['//admin/x', '/public/../admin/x', '/%2e%2e/admin/x', '/public/%2e%2e/admin/x', '/public/%2E%2E/admin/x', '/public/x/../../admin/x', '/public/./../admin/x', '/%61dmin/x', '/public/.%2e/admin/x', '///admin/x'];
    for (const p of denied) await assertDenied(`GET ${p}`, () => fromApi(p), 'RBAC_DENY_RULE');
    // Encoded slash and backslash, and NUL: refused outright (400) or denied (403), never passed on.
    const refused = ['/admin%2Fx', '/public/..%2Fadmin/x', '/public/..%2fadmin/x', '/public/..%5Cadmin/x', '/public/..\\admin/x', '/public/%00/x'];
    for (const p of refused) {
      const before = web.requests;
      const r = await fromApi(p);
      assert.ok(r.status === 400 || r.status === 403, `GET ${p}: refused with 400 or 403: ${describeResult(r)}`);
      assert.ok(meshError(r), `GET ${p}: the refusal carries a reason code: ${describeResult(r)}`);
      assert.equal(web.requests, before, `GET ${p}: the service never saw it`);
    }
    const leaked = web.seen.slice(seenBefore).map((x) => x.url);
    assert.deepEqual(leaked, [], 'no trick reached the service');
  });

  test('the upstream receives exactly the normalized path that was checked', { timeout: 15_000 }, async () => {
    const cases: Array<[string, string]> = [
      ['/public//a/./b', '/public/a/b'],
      ['/public/a/../b', '/public/b'],
      ['/public/%7Euser/x', '/public/~user/x'],
      ['/public/%41%2d%5f', '/public/A-_'],
      ['/public/a%3Bb', '/public/a%3Bb'],
      ['/public/x/', '/public/x/'],
      ['/public/a/../b?q=%2F..&x=//y', '/public/b?q=%2F..&x=//y'],
    ];
    for (const [sent, arrives] of cases) {
      const r = await assertAllowed(`GET ${sent}`, () => fromApi(sent));
      assert.equal(r.json?.url, arrives, `GET ${sent} arrives as ${arrives}`);
    }
  });

  test('forged identity headers do not reach the service and do not change the decision', { timeout: 15_000 }, async () => {
    const forged = {
      'x-hostmesh-source': `spiffe://${TD}/service/admin`,
      'X-Hostmesh-Caller': 'admin',
      'x-forwarded-client-cert': `By=spiffe://${TD}/service/web;URI=spiffe://${TD}/service/admin`,
      // The same names for servers that read `_` as `-` (Rack, PHP, WSGI: HTTP_X_HOSTMESH_SOURCE).
      X_Hostmesh_Source: `spiffe://${TD}/service/admin`,
      x_forwarded_client_cert: `URI=spiffe://${TD}/service/admin`,
    };
    const r = await assertAllowed('api with forged headers', () => fromApi('/public/forged', 'GET', forged));
    const h = r.json.headers as Record<string, string>;
    assert.equal(h['x-hostmesh-source'], API_ID, 'the identity header is the verified caller’s, not the forged one');
    const raw = r.json.rawHeaders as string[];
    const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    assert.equal(names.filter((n) => n === 'x-hostmesh-source').length, 1, `exactly one x-hostmesh-source: ${JSON.stringify(raw)}`);
    assert.ok(!names.includes('x-hostmesh-caller'), 'other x-hostmesh-* headers the caller sent are removed');
    assert.ok(!names.some((n) => n.includes('_')), `underscore spellings are removed too: ${JSON.stringify(names)}`);
    // The inbound side may set its own x-forwarded-client-cert, but only from the verified cert.
    const xfcc = raw.filter((_, i) => i % 2 === 1 && names[(i - 1) / 2] === 'x-forwarded-client-cert');
    assert.ok(xfcc.length <= 1, `at most one x-forwarded-client-cert: ${JSON.stringify(xfcc)}`);
    assert.ok(!xfcc.some((v) => v.includes('service/admin') || v.includes('service/web')), `the forged x-forwarded-client-cert is gone: ${JSON.stringify(xfcc)}`);
    // batch pretends to be api: still batch to the policy.
    await assertDenied(
      'batch claiming to be api',
      () => fromBatch('/public/x', 'GET', { 'x-hostmesh-source': API_ID, 'x-forwarded-client-cert': `URI=${API_ID}` }),
      'RBAC_DEFAULT_DENY',
    );
    // api pretending to be someone else on a path only api may use: still api, still allowed.
    await assertAllowed('api claiming to be batch', () => fromApi('/public/y', 'GET', { 'x-hostmesh-source': `spiffe://${TD}/service/batch` }));
  });

  test('an identity claimed in a chunked trailer is refused (400) and never reaches the service', { timeout: 15_000 }, async () => {
    const before = web.seen.length;
    const request =
      'POST /public/trailer HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n' +
      `3\r\nabc\r\n0\r\nX-Hostmesh-Source: spiffe://${TD}/service/admin\r\n\r\n`;
    const p = await probe(A, WEB_OUT_A, null, request, 5000);
    assert.match(p.received, /^HTTP\/1\.1 400 /, JSON.stringify(p.received.slice(0, 200)));
    assert.match(p.received, /x-hostmesh-error: FORBIDDEN_TRAILER/i);
    await sleep(200);
    assert.ok(!web.seen.slice(before).some((r) => r.url === '/public/trailer'), 'the service never saw the request');
  });

  test('audit mode lets would-be denials through; back to enforce denies again', { timeout: 25_000 }, async () => {
    await applyAndWait(s, [{ kind: 'AccessPolicy', name: 'web', spec: { service: 'web', mode: 'audit', rules: WEB_POLICY_RULES } }], [b]);
    const r1 = await assertAllowed('audit: GET /admin/x (deny rule)', () => fromApi('/admin/x'));
    assert.equal(r1.json?.url, '/admin/x');
    await assertAllowed('audit: GET /other (default deny)', () => fromApi('/other'));
    await assertAllowed('audit: batch GET /public/x', () => fromBatch('/public/x'));
    await assertAllowed('audit: GET /public/x (allowed anyway)', () => fromApi('/public/x'));

    await applyAndWait(s, [{ kind: 'AccessPolicy', name: 'web', spec: { service: 'web', mode: 'enforce', rules: WEB_POLICY_RULES } }], [b]);
    await assertDenied('enforce again: GET /admin/x', () => fromApi('/admin/x'), 'RBAC_DENY_RULE');
    await assertAllowed('enforce again: GET /public/x', () => fromApi('/public/x'));
  });

  test('a policy change applies to requests on client connections already open (keep-alive)', { timeout: 25_000 }, async () => {
    const { Agent } = await import('node:http');
    const keep = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await httpRequest({ host: A, port: WEB_OUT_A, path: '/public/k', agent: keep });
      assert.equal(first.status, 200, describeResult(first));
      // Take the allow away: the same client connection now gets 403, then 200 again when restored.
      await applyAndWait(s, [{ kind: 'AccessPolicy', name: 'web', spec: { service: 'web', rules: WEB_POLICY_RULES.slice(1) } }], [b]);
      const denied = await httpRequest({ host: A, port: WEB_OUT_A, path: '/public/k', agent: keep });
      assert.equal(denied.status, 403, `allow removed: ${describeResult(denied)}`);
      await applyAndWait(s, [{ kind: 'AccessPolicy', name: 'web', spec: { service: 'web', rules: WEB_POLICY_RULES } }], [b]);
      const again = await httpRequest({ host: A, port: WEB_OUT_A, path: '/public/k', agent: keep });
      assert.equal(again.status, 200, `allow restored: ${describeResult(again)}`);
    } finally {
      keep.destroy();
    }
  });
});
