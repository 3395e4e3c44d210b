import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseErrorBody } from '../../cli/client.js';
import { pointAtInput } from '../../cli/commands/apply.js';
import { joinTokenRequest } from '../../cli/commands/token.js';
import { ApiError, CliError, errorLine, exitCodeFor, UsageError } from '../../cli/errors.js';
import { resolveTarget } from '../../cli/targets.js';
import { describeTransportError, errorCode } from '../../cli/transport-errors.js';

const target = { url: 'https://127.0.0.1:7443', caSource: '--ca-file root.pem', timeoutMs: 10_000 };
const sysErr = (code: string): Error => Object.assign(new Error(`connect ${code}`), { code });

test('validation errors lead with the first violation field', () => {
  const e = parseErrorBody(
    400,
    JSON.stringify({ error: { code: 'HM_ERR_VALIDATION', message: 'invalid body', violations: [{ field: 'documents[1].spec.port', message: 'must be >= 1' }] } }),
  );
  assert.equal(errorLine(e), 'documents[1].spec.port: must be >= 1');
  assert.equal(exitCodeFor(e), 1);
});

test('other API errors print their message; non-JSON bodies are summarised', () => {
  assert.equal(errorLine(parseErrorBody(404, '{"error":{"code":"HM_ERR_NOT_FOUND","message":"Service \\"x\\" does not exist"}}')), 'Service "x" does not exist');
  assert.equal(errorLine(parseErrorBody(502, '<html>\nBad Gateway</html>')), 'the server answered HTTP 502: <html>');
});

test('apply errors point back at the file and document', () => {
  const e = new ApiError(400, 'HM_ERR_VALIDATION', 'x', [{ field: 'documents[1].spec.port', message: 'must be >= 1' }]);
  const docs = [
    { value: {}, where: 'a.yaml: document 1, line 1' },
    { value: {}, where: 'a.yaml: document 3, line 9' },
  ];
  assert.equal(errorLine(pointAtInput(e, docs)), 'documents[1].spec.port: must be >= 1 (a.yaml: document 3, line 9)');
});

test('exit codes: 2 for usage, 1 otherwise; messages are one line', () => {
  assert.equal(exitCodeFor(new UsageError('x')), 2);
  assert.equal(exitCodeFor(new CliError('x')), 1);
  assert.equal(exitCodeFor(new TypeError('x')), 1);
  assert.equal(errorLine(new Error('a\n  b')), 'a b');
});

test('transport failures become one actionable line', () => {
  assert.equal(
    describeTransportError(sysErr('ECONNREFUSED'), target).message,
    'cannot reach the server at https://127.0.0.1:7443: connection refused (is it running? set --server or HOSTMESH_ADDR)',
  );
  assert.match(describeTransportError(sysErr('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), target).message, /does not chain to the mesh root from --ca-file root\.pem/);
  assert.match(describeTransportError(sysErr('SELF_SIGNED_CERT_IN_CHAIN'), target).message, /does not chain to the mesh root/);
  assert.match(describeTransportError(sysErr('ERR_TLS_CERT_ALTNAME_INVALID'), target).message, /not valid for 127\.0\.0\.1/);
  assert.match(describeTransportError(sysErr('UND_ERR_CONNECT_TIMEOUT'), target).message, /timed out after 10s/);
  // happy-eyeballs wraps the reason in an AggregateError; undici may wrap it in a cause
  const agg = Object.assign(new AggregateError([sysErr('ECONNREFUSED'), sysErr('ECONNREFUSED')], ''), { code: undefined });
  assert.equal(errorCode(agg), 'ECONNREFUSED');
  assert.equal(errorCode(Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET', cause: sysErr('ECONNRESET') })), 'ECONNRESET');
});

test('kinds: resource aliases and observed things', () => {
  assert.deepEqual(resolveTarget('svc'), { type: 'resource', kind: 'Service' });
  assert.deepEqual(resolveTarget('Services'), { type: 'resource', kind: 'Service' });
  assert.deepEqual(resolveTarget('trafficpolicies'), { type: 'resource', kind: 'TrafficPolicy' });
  assert.deepEqual(resolveTarget('host'), { type: 'hosts' });
  assert.deepEqual(resolveTarget('instances'), { type: 'instances' });
  assert.deepEqual(resolveTarget('audit'), { type: 'audit' });
  assert.throws(() => resolveTarget('pods'), (e: unknown) => e instanceof UsageError && /unknown kind "pods"/.test(e.message));
});

test('token create flags become the request body', () => {
  assert.deepEqual(joinTokenRequest({ ttl: '1h', singleUse: true, services: 'a, b,', description: 'd' }), {
    ttl: '1h',
    singleUse: true,
    services: ['a', 'b'],
    description: 'd',
  });
  assert.deepEqual(joinTokenRequest({}), {});
  assert.throws(() => joinTokenRequest({ ttl: 'soon' }), UsageError);
  assert.throws(() => joinTokenRequest({ services: ',' }), UsageError);
});
