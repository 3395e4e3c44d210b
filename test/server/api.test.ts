// The admin API through a real server process over real HTTPS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { startTestServer, type TestServer } from '../helpers/server.js';

const valid = {
  Mesh: { kind: 'Mesh', name: 'default', spec: { mtls: 'strict', defaultAccess: 'deny', certTTL: '24h' } },
  Service: { kind: 'Service', name: 'web', labels: { team: 'shop' }, spec: { protocol: 'http', port: 8080 } },
  Route: {
    kind: 'Route',
    name: 'web',
    spec: {
      service: 'web',
      rules: [
        { match: { pathPrefix: '/v2' }, destinations: [{ subset: { version: 'v2' }, weight: 100 }] },
        { destinations: [{ subset: { version: 'v1' }, weight: 90 }, { subset: { version: 'v2' }, weight: 10 }] },
      ],
      timeout: '5s',
      retries: { attempts: 2, perTryTimeout: '1s', on: ['connect-failure', 'reset', '503'] },
    },
  },
  TrafficPolicy: {
    kind: 'TrafficPolicy',
    name: 'web',
    spec: {
      service: 'web',
      loadBalancer: 'p2c-ewma',
      connectTimeout: '1s',
      circuitBreaker: { maxConnections: 1024, maxPending: 256 },
      outlierDetection: { consecutiveErrors: 5, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50 },
    },
  },
  AccessPolicy: {
    kind: 'AccessPolicy',
    name: 'web',
    spec: {
      service: 'web',
      mode: 'enforce',
      rules: [
        { from: ['api'], action: 'allow', http: { methods: ['GET', 'POST'], paths: ['/public/*'] } },
        { from: ['*'], action: 'deny', http: { paths: ['/admin/*'] } },
      ],
    },
  },
} as const;

// One invalid body per kind, with the field the error must name.
const invalid: Array<{ kind: string; name: string; doc: unknown; field: RegExp }> = [
  { kind: 'Mesh', name: 'default', doc: { kind: 'Mesh', name: 'default', spec: { defaultAccess: 'maybe' } }, field: /spec\.defaultAccess/ },
  { kind: 'Service', name: 'web', doc: { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 70000 } }, field: /spec\.port/ },
  { kind: 'Service', name: 'Bad_Name', doc: { kind: 'Service', name: 'Bad_Name', spec: { protocol: 'http', port: 80 } }, field: /(^|\s)name\b/ },
  { kind: 'Route', name: 'web', doc: { kind: 'Route', name: 'web', spec: { service: 'web', rules: [{ destinations: [{ weight: 90 }, { weight: 5 }] }] } }, field: /spec\.rules\[0\]\.destinations/ },
  { kind: 'Route', name: 'web', doc: { kind: 'Route', name: 'web', spec: { service: 'ghost', rules: [{ destinations: [{ weight: 100 }] }] } }, field: /spec\.service/ },
  { kind: 'TrafficPolicy', name: 'web', doc: { kind: 'TrafficPolicy', name: 'web', spec: { service: 'web', loadBalancer: 'random' } }, field: /spec\.loadBalancer/ },
  { kind: 'TrafficPolicy', name: 'web', doc: { kind: 'TrafficPolicy', name: 'web', spec: { service: 'web', connectTimeout: 'soon' } }, field: /spec\.connectTimeout/ },
  { kind: 'AccessPolicy', name: 'web', doc: { kind: 'AccessPolicy', name: 'web', spec: { service: 'web', rules: [{ from: ['api'], action: 'permit' }] } }, field: /spec\.rules\[0\]\.action/ },
  { kind: 'AccessPolicy', name: 'web', doc: { kind: 'AccessPolicy', name: 'web', spec: { service: 'web', rules: [], extra: 1 } }, field: /spec\.extra/ },
];

describe('admin API', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(async () => {
    await s?.cleanup();
  });

  async function snapshot(): Promise<{ revision: number; items: unknown[] }> {
    const r = await s.api('GET', '/v1/resources');
    assert.equal(r.status, 200);
    return { revision: r.body.revision, items: r.body.items };
  }

  test('no token and a wrong token get 401; /v1/ca/root and /healthz need none', async () => {
    const none = await s.api('GET', '/v1/status', undefined, { token: null });
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'HM_ERR_UNAUTHENTICATED');
    const wrong = await s.api('GET', '/v1/status', undefined, { token: 'hma_0123456789abcdef_' + 'A'.repeat(43) });
    assert.equal(wrong.status, 401);
    const junk = await s.api('GET', '/v1/status', undefined, { token: 'letmein' });
    assert.equal(junk.status, 401);
    const root = await s.api('GET', '/v1/ca/root', undefined, { token: null });
    assert.equal(root.status, 200);
    const der = new X509Certificate(root.body.pem).raw;
    assert.equal(root.body.fingerprint, 'sha256:' + createHash('sha256').update(der).digest('hex'));
    assert.equal(root.body.trustDomain, 'hostmesh.local');
    assert.equal((await s.api('GET', '/healthz', undefined, { token: null })).status, 200);
    const ok = await s.api('GET', '/v1/status');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.trustDomain, 'hostmesh.local');
  });

  test('every resource kind round-trips through apply and get', async () => {
    const r = await s.api('POST', '/v1/apply', { documents: Object.values(valid) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.results.map((x: { action: string }) => x.action), ['created', 'created', 'created', 'created', 'created']);
    for (const doc of Object.values(valid)) {
      const g = await s.api('GET', `/v1/resources/${doc.kind}/${doc.name}`);
      assert.equal(g.status, 200);
      assert.equal(g.body.kind, doc.kind);
      assert.deepEqual(g.body.spec, doc.spec);
      assert.equal(g.body.status.revision, r.body.revision);
      assert.equal(g.body.apiVersion, 'hostmesh/v1');
    }
    // Plural and lower-case kinds in the URL mean the same.
    const list = await s.api('GET', '/v1/resources/services');
    assert.deepEqual(list.body.items.map((x: { name: string }) => x.name), ['web']);
    // Applying the same again changes nothing and does not bump the revision.
    const again = await s.api('POST', '/v1/apply', { documents: Object.values(valid) });
    assert.equal(again.body.revision, r.body.revision);
    assert.ok(again.body.results.every((x: { action: string }) => x.action === 'unchanged'));
  });

  test('invalid bodies of each kind get 400 naming the field, and the registry is unchanged', async () => {
    const before = await snapshot();
    for (const c of invalid) {
      const put = await s.api('PUT', `/v1/resources/${c.kind}/${c.name}`, c.doc);
      assert.equal(put.status, 400, `${c.kind}: ${JSON.stringify(put.body)}`);
      assert.equal(put.body.error.code, 'HM_ERR_VALIDATION');
      assert.ok(put.body.error.violations.some((v: { field: string }) => c.field.test(v.field)), `${c.kind}: ${JSON.stringify(put.body.error)}`);
      assert.match(put.body.error.message, c.field);
      // The same document inside a batch with a valid one: nothing of the batch lands.
      const batch = await s.api('POST', '/v1/apply', { documents: [{ kind: 'Service', name: 'extra', spec: { protocol: 'tcp', port: 9000 } }, c.doc] });
      assert.equal(batch.status, 400);
      assert.ok(batch.body.error.violations.some((v: { field: string }) => v.field.startsWith('documents[1].')), JSON.stringify(batch.body.error));
    }
    assert.deepEqual(await snapshot(), before);
  });

  test('reference rules: duplicate in a batch, second route for a service, deleting a service in use', async () => {
    const before = await snapshot();
    const dup = await s.api('POST', '/v1/apply', { documents: [valid.Service, valid.Service] });
    assert.equal(dup.status, 400);
    assert.match(dup.body.error.message, /documents\[1\]\.name.*twice/);
    const second = await s.api('PUT', '/v1/resources/Route/web-canary', { ...valid.Route, name: 'web-canary' });
    assert.equal(second.status, 400);
    assert.match(second.body.error.message, /spec\.service.*already has Route "web"/);
    const tcpify = await s.api('PUT', '/v1/resources/Service/web', { ...valid.Service, spec: { protocol: 'tcp', port: 8080 } });
    assert.equal(tcpify.status, 400, 'a service with a Route cannot become tcp');
    const del = await s.api('DELETE', '/v1/resources/Service/web');
    assert.equal(del.status, 409);
    assert.equal(del.body.error.code, 'HM_ERR_IN_USE');
    const mesh = await s.api('PUT', '/v1/resources/Mesh/default', { kind: 'Mesh', name: 'default', spec: { trustDomain: 'other.example' } });
    assert.equal(mesh.status, 400);
    assert.match(mesh.body.error.message, /spec\.trustDomain/);
    const meshName = await s.api('PUT', '/v1/resources/Mesh/second', { kind: 'Mesh', name: 'second', spec: {} });
    assert.equal(meshName.status, 400);
    assert.deepEqual(await snapshot(), before);
  });

  test('malformed JSON 400, wrong content type 415, oversized body 413, unknown kind 404, unknown path 404', async () => {
    const before = await snapshot();
    const bad = await s.api('POST', '/v1/apply', undefined, { raw: '{"documents": [', headers: { 'content-type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'HM_ERR_BAD_JSON');
    const txt = await s.api('POST', '/v1/apply', undefined, { raw: 'kind: Service', headers: { 'content-type': 'text/yaml' } });
    assert.equal(txt.status, 415);
    assert.equal(txt.body.error.code, 'HM_ERR_UNSUPPORTED_MEDIA_TYPE');
    const big = await s.api('POST', '/v1/apply', undefined, {
      raw: JSON.stringify({ documents: [{ kind: 'Service', name: 'big', labels: { x: 'y'.repeat(2 * 1024 * 1024) }, spec: { protocol: 'tcp', port: 1 } }] }),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'HM_ERR_PAYLOAD_TOO_LARGE');
    const kind = await s.api('GET', '/v1/resources/Widget');
    assert.equal(kind.status, 404);
    assert.equal(kind.body.error.code, 'HM_ERR_UNKNOWN_KIND');
    const kindInBody = await s.api('POST', '/v1/apply', { documents: [{ kind: 'Widget', name: 'x', spec: {} }] });
    assert.equal(kindInBody.status, 404);
    assert.equal(kindInBody.body.error.code, 'HM_ERR_UNKNOWN_KIND');
    const path = await s.api('GET', '/v1/nothing-here');
    assert.equal(path.status, 404);
    assert.equal(path.body.error.code, 'HM_ERR_ROUTE_NOT_FOUND');
    assert.deepEqual(await snapshot(), before);
  });

  test('a stale version gets 409; concurrent writers with the same version: exactly one wins', async () => {
    const cur = await s.api('GET', '/v1/resources/Service/web');
    const rev = cur.body.status.revision as number;
    const ok = await s.api('PUT', '/v1/resources/Service/web', { ...valid.Service, spec: { protocol: 'http', port: 8081 } }, { headers: { 'if-match': `"${rev}"` } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const stale = await s.api('PUT', '/v1/resources/Service/web', { ...valid.Service, spec: { protocol: 'http', port: 8082 } }, { headers: { 'if-match': `"${rev}"` } });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error.code, 'HM_ERR_CONFLICT');
    // status.revision in the body (what `get -o yaml` prints) works the same way.
    const staleBody = await s.api('PUT', '/v1/resources/Service/web', { ...valid.Service, status: { revision: rev } });
    assert.equal(staleBody.status, 409);

    const now = (await s.api('GET', '/v1/resources/Service/web')).body.status.revision as number;
    const racers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        s.api('PUT', '/v1/resources/Service/web', { ...valid.Service, spec: { protocol: 'http', port: 9000 + i } }, { headers: { 'if-match': String(now) } }),
      ),
    );
    assert.equal(racers.filter((r) => r.status === 200).length, 1);
    assert.equal(racers.filter((r) => r.status === 409).length, 7);

    // Writers without a version, on different resources at once: every write lands.
    const before = (await snapshot()).revision;
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.api('PUT', `/v1/resources/Service/svc-${i}`, { kind: 'Service', name: `svc-${i}`, spec: { protocol: 'tcp', port: 1000 + i } })),
    );
    assert.ok(many.every((r) => r.status === 201));
    const after = await snapshot();
    assert.equal(after.revision, before + 20);
    for (let i = 0; i < 20; i++) assert.ok(after.items.some((x) => (x as { name: string }).name === `svc-${i}`));
  });

  test('viewer tokens read but cannot write; revoked tokens stop working', async () => {
    const created = await s.api('POST', '/v1/admin-tokens', { role: 'viewer', description: 'dashboards' });
    assert.equal(created.status, 201);
    const viewer = created.body.token as string;
    assert.equal((await s.api('GET', '/v1/resources', undefined, { token: viewer })).status, 200);
    const write = await s.api('PUT', '/v1/resources/Service/nope', { kind: 'Service', name: 'nope', spec: { protocol: 'tcp', port: 1 } }, { token: viewer });
    assert.equal(write.status, 403);
    assert.equal(write.body.error.code, 'HM_ERR_FORBIDDEN');
    const list = await s.api('GET', '/v1/admin-tokens');
    assert.ok(list.body.items.every((t: Record<string, unknown>) => !('token' in t)), 'secrets never listed');
    assert.equal((await s.api('DELETE', `/v1/admin-tokens/${created.body.id}`)).status, 200);
    assert.equal((await s.api('GET', '/v1/resources', undefined, { token: viewer })).status, 401);
  });

  test('join tokens: create, list without secrets, revoke; bad ttl refused', async () => {
    const t = await s.api('POST', '/v1/tokens', { ttl: '2h', singleUse: true, services: ['web'] });
    assert.equal(t.status, 201);
    assert.match(t.body.token, /^hmj_/);
    assert.equal(t.body.singleUse, true);
    assert.deepEqual(t.body.services, ['web']);
    const exp = Date.parse(t.body.expiresAt) - Date.parse(t.body.createdAt);
    assert.equal(exp, 2 * 3600_000);
    const list = await s.api('GET', '/v1/tokens');
    assert.ok(list.body.items.some((x: { id: string }) => x.id === t.body.id));
    assert.ok(list.body.items.every((x: Record<string, unknown>) => !('token' in x)));
    const rev = await s.api('DELETE', `/v1/tokens/${t.body.id}`);
    assert.equal(rev.status, 200);
    assert.ok(rev.body.revokedAt);
    const bad = await s.api('POST', '/v1/tokens', { ttl: 'forever' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /ttl/);
  });

  test('audit log records who changed what between which revisions', async () => {
    const a = await s.api('GET', '/v1/audit?limit=500&kind=Service');
    assert.equal(a.status, 200);
    const web = a.body.items.filter((e: { name: string }) => e.name === 'web');
    assert.ok(web.length >= 2);
    const update = web.find((e: { action: string }) => e.action === 'update');
    assert.ok(update.oldRevision < update.newRevision);
    assert.match(update.actor, /^token:[0-9a-f]{16}$/);
  });

  test('GET /metrics needs a token and is valid Prometheus exposition text', async () => {
    assert.equal((await s.api('GET', '/metrics', undefined, { token: null })).status, 401);
    const r = await s.api('GET', '/metrics');
    assert.equal(r.status, 200);
    const families = parsePrometheusTextFormat(r.body as string);
    const byName = new Map(families.map((f) => [f.name, f]));
    const api = byName.get('hostmesh_server_api_requests_total');
    assert.equal(api?.type, 'COUNTER');
    // Route patterns, never raw URLs, as label values.
    assert.ok(api!.metrics.some((m) => m.labels?.['route'] === '/v1/resources/:kind/:name' && m.labels?.['method'] === 'PUT'));
    assert.ok(!api!.metrics.some((m) => (m.labels?.['route'] ?? '').includes('web')));
    assert.equal(byName.get('hostmesh_server_push_to_ack_seconds')?.type, 'HISTOGRAM');
    assert.ok(Number(byName.get('hostmesh_server_revision')!.metrics[0]!.value) > 0);
  });

  test('the OpenAPI document describes the API', async () => {
    const doc = await s.api('GET', '/openapi.json', undefined, { token: null });
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, '3.0.3');
    assert.ok(doc.body.paths['/v1/resources/{kind}/{name}'].put);
    assert.ok(doc.body.paths['/v1/apply'].post);
  });
});
