// The CLI against a real server on loopback: discovery through the data dir, all-or-nothing
// apply, the -o yaml round trip with its optimistic-concurrency revision, and trust pinned to
// the mesh root.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

let server: TestServer;
let flags: string[];
let scratch: string;

before(async () => {
  server = await startTestServer();
  flags = ['--data-dir', server.dataDir];
  scratch = tempDir('hostmesh-cli-e2e-');
});

after(async () => {
  await server?.cleanup();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const MANIFEST = `kind: Service
name: web
spec: { protocol: http, port: 8080 }
---
kind: Route
name: web
spec:
  service: web
  rules:
    - destinations: [ { subset: { version: v1 }, weight: 90 }, { subset: { version: v2 }, weight: 10 } ]
  retries: { attempts: 2, on: [connect-failure, "503"] }
---
`;

test('apply creates, then reports unchanged; get prints a table', async () => {
  let r = await runCli(['apply', '-f', '-', ...flags], { input: MANIFEST });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'service/web created\nroute/web created\n');
  r = await runCli(['apply', '-f', '-', ...flags], { input: MANIFEST });
  assert.equal(r.stdout, 'service/web unchanged\nroute/web unchanged\n');

  r = await runCli(['get', 'svc', ...flags]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^NAME +PROTOCOL +PORT +REVISION +AGE\nweb +http +8080 +\d+ +\d+s\n$/);
});

test('apply is all or nothing, and the error names the field and the document', async () => {
  const bad = 'kind: Service\nname: api\nspec: { protocol: http, port: 9090 }\n---\nkind: Service\nname: broken\nspec: { protocol: http, port: 0 }\n';
  const r = await runCli(['apply', '-f', '-', ...flags], { input: bad });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: documents\[1\]\.spec\.port: .*\(<stdin>: document 2, line 5\)\n$/);
  const get = await runCli(['get', 'svc', 'api', ...flags]);
  assert.equal(get.code, 1, 'the valid document was not applied either');
});

test('-o yaml applies back; a stale copy is refused', async () => {
  const r = await runCli(['get', 'svc', 'web', '-o', 'yaml', ...flags]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /status:\n {2}revision: \d+/);
  const file = path.join(scratch, 'web.yaml');
  fs.writeFileSync(file, r.stdout.replace('port: 8080', 'port: 8081'));
  const first = await runCli(['apply', '-f', file, ...flags]);
  assert.equal(first.stdout, 'service/web updated\n', first.stderr);
  const second = await runCli(['apply', '-f', file, ...flags]);
  assert.equal(second.code, 1);
  assert.equal(second.stderr.split('\n').length, 2, second.stderr);
});

test('status and tokens', async () => {
  const s = await runCli(['status', '-o', 'json', ...flags]);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(JSON.parse(s.stdout).trustDomain, 'hostmesh.local');

  const t = await runCli(['token', 'create', '--ttl', '1h', '--services', 'web', '-o', 'json', ...flags]);
  assert.equal(t.code, 0, t.stderr);
  const created = JSON.parse(t.stdout) as { id: string; token: string };
  assert.ok(created.token);
  const list = await runCli(['token', 'list', ...flags]);
  assert.match(list.stdout, new RegExp(`^${created.id} .* web .* active$`, 'm'));
  const revoke = await runCli(['token', 'revoke', created.id, ...flags]);
  assert.equal(revoke.code, 0, revoke.stderr);
});

test('delete, then get says it is gone', async () => {
  assert.equal((await runCli(['delete', 'route', 'web', ...flags])).stdout.split(' ')[0], 'route/web');
  const r = await runCli(['get', 'routes', 'web', ...flags]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: .+\n$/);
});

test('a server that does not chain to the given root is refused', async () => {
  const other = await startTestServer();
  try {
    const r = await runCli(['get', 'svc', '--server', server.url, '--token', server.token, '--ca-file', path.join(other.dataDir, 'ca', 'root.crt.pem')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: the server's certificate at .* does not chain to the mesh root from --ca-file .*\n$/);
  } finally {
    await other.cleanup();
  }
});
