// Access policy evaluation: defaults, deny beats allow, method and path rules, wildcard sources,
// audit mode, tcp vs http rules, and that normalized path tricks cannot get around a deny.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessPolicySpec } from '../../shared/resources.js';
import { compileAccessPolicy, type AccessEvaluator } from '../../agent/policy/access.js';
import { normalizeTarget, type NormalizedTarget } from '../../agent/policy/normalize-path.js';

const policy = (rules: AccessPolicySpec['rules'], mode?: 'enforce' | 'audit'): AccessPolicySpec =>
  mode ? { service: 'web', mode, rules } : { service: 'web', rules };

/** What the inbound listener does: normalize, then decide on the normalized path. */
function httpDecide(ev: AccessEvaluator, source: string, method: string, target: string): string {
  const t = normalizeTarget(method, target);
  if (typeof t === 'string') return `refused:${t}`;
  const d = ev.decide(source, method, (t as NormalizedTarget).path);
  return d.allowed ? 'allow' : 'deny';
}

test('no policy: the mesh default decides', () => {
  const deny = compileAccessPolicy(null, 'deny');
  assert.deepEqual(deny.decide('api', 'GET', '/'), { allowed: false, reason: 'RBAC_DEFAULT_DENY', ruleIndex: -1, audit: false, wouldDeny: true });
  assert.equal(deny.decide('api', null, null).allowed, false);
  const allow = compileAccessPolicy(null, 'allow');
  assert.deepEqual(allow.decide('api', null, null), { allowed: true, reason: 'RBAC_DEFAULT_ALLOW', ruleIndex: -1, audit: false, wouldDeny: false });
  // an empty policy is the same
  assert.equal(compileAccessPolicy(policy([]), 'deny').decide('api', 'GET', '/').reason, 'RBAC_DEFAULT_DENY');
});

test('default deny: only what an allow rule names passes', () => {
  const ev = compileAccessPolicy(policy([{ from: ['api'], action: 'allow' }]), 'deny');
  assert.deepEqual(ev.decide('api', 'GET', '/x'), { allowed: true, reason: 'RBAC_ALLOW', ruleIndex: 0, audit: false, wouldDeny: false });
  assert.equal(ev.decide('api', null, null).allowed, true);
  assert.equal(ev.decide('batch', 'GET', '/x').reason, 'RBAC_DEFAULT_DENY');
});

test('deny beats allow, whatever the order', () => {
  for (const rules of [
    [
      { from: ['api'], action: 'allow' as const },
      { from: ['*'], action: 'deny' as const, http: { paths: ['/admin/*'] } },
    ],
    [
      { from: ['*'], action: 'deny' as const, http: { paths: ['/admin/*'] } },
      { from: ['api'], action: 'allow' as const },
    ],
  ]) {
    const ev = compileAccessPolicy(policy(rules), 'allow');
    const d = ev.decide('api', 'GET', '/admin/users');
    assert.equal(d.allowed, false);
    assert.equal(d.reason, 'RBAC_DENY_RULE');
    assert.equal(rules[d.ruleIndex]?.action, 'deny');
    assert.equal(ev.decide('api', 'GET', '/public').reason, 'RBAC_ALLOW');
    assert.equal(ev.decide('other', 'GET', '/public').reason, 'RBAC_DEFAULT_ALLOW');
  }
});

test('the first matching rule of the deciding kind is reported', () => {
  const ev = compileAccessPolicy(
    policy([
      { from: ['*'], action: 'allow', http: { methods: ['GET'] } },
      { from: ['api'], action: 'allow' },
      { from: ['api'], action: 'deny', http: { paths: ['/x'] } },
      { from: ['*'], action: 'deny', http: { paths: ['/x'] } },
    ]),
    'deny',
  );
  assert.equal(ev.decide('api', 'GET', '/y').ruleIndex, 0);
  assert.equal(ev.decide('api', 'POST', '/y').ruleIndex, 1);
  assert.equal(ev.decide('api', 'GET', '/x').ruleIndex, 2);
  assert.equal(ev.decide('web', 'GET', '/x').ruleIndex, 3);
});

test('method and path rules', () => {
  const ev = compileAccessPolicy(
    policy([
      { from: ['api'], action: 'allow', http: { methods: ['GET', 'POST'], paths: ['/public/*', '/health'] } },
      { from: ['ops'], action: 'allow', http: { paths: ['/adm*'] } },
      { from: ['ops'], action: 'deny', http: { methods: ['DELETE'] } },
    ]),
    'deny',
  );
  const allowed = (s: string, m: string, p: string): boolean => ev.decide(s, m, p).allowed;
  assert.equal(allowed('api', 'GET', '/public/a/b'), true);
  assert.equal(allowed('api', 'POST', '/public/'), true);
  assert.equal(allowed('api', 'GET', '/public'), true); // `/public/*` covers the directory itself
  assert.equal(allowed('api', 'GET', '/publicity'), false);
  assert.equal(allowed('api', 'GET', '/health'), true);
  assert.equal(allowed('api', 'GET', '/health/'), false); // exact is exact
  assert.equal(allowed('api', 'PUT', '/public/a'), false);
  assert.equal(allowed('api', 'get', '/public/a'), true); // methods compare case-insensitively
  assert.equal(allowed('api', 'GET', '/PUBLIC/a'), false); // paths do not
  assert.equal(allowed('ops', 'GET', '/adm'), true);
  assert.equal(allowed('ops', 'GET', '/admin/x'), true);
  assert.equal(allowed('ops', 'GET', '/ad'), false);
  assert.equal(allowed('ops', 'DELETE', '/admin'), false);
  assert.equal(allowed('ops', 'delete', '/admin'), false);
});

test('wildcard source, and many prefixes searched correctly', () => {
  const paths = ['/a/*', '/a/b/*', '/b*', '/c/d/*', '/zz', '/m/*', '/m/n/o/*', '/%7Eu/*'];
  const ev = compileAccessPolicy(policy([{ from: ['*'], action: 'allow', http: { paths } }]), 'deny');
  const allowed = (p: string): boolean => ev.decide('anyone', 'GET', p).allowed;
  for (const p of ['/a', '/a/', '/a/b/c', '/b', '/bx/y', '/c/d', '/c/d/e', '/zz', '/m/x', '/m/n/o/p', '/~u/x']) {
    assert.equal(allowed(p), true, p);
  }
  for (const p of ['/', '/c', '/c/e', '/zz/', '/z', '/n', '/ab', '/~v/x', '/%7Eu/x']) assert.equal(allowed(p), false, p);
  const all = compileAccessPolicy(policy([{ from: ['*'], action: 'allow', http: { paths: ['/*'] } }]), 'deny');
  assert.equal(all.decide('x', 'GET', '/').allowed, true);
  assert.equal(all.decide('x', 'GET', '/deep/er').allowed, true);
});

test('audit mode reports would-be denials but allows', () => {
  const ev = compileAccessPolicy(
    policy(
      [
        { from: ['api'], action: 'allow' },
        { from: ['*'], action: 'deny', http: { paths: ['/admin/*'] } },
      ],
      'audit',
    ),
    'deny',
  );
  assert.equal(ev.mode, 'audit');
  assert.deepEqual(ev.decide('api', 'GET', '/admin/x'), { allowed: true, reason: 'RBAC_DENY_RULE', ruleIndex: 1, audit: true, wouldDeny: true });
  assert.deepEqual(ev.decide('batch', 'GET', '/x'), { allowed: true, reason: 'RBAC_DEFAULT_DENY', ruleIndex: -1, audit: true, wouldDeny: true });
  assert.deepEqual(ev.decide('api', 'GET', '/x'), { allowed: true, reason: 'RBAC_ALLOW', ruleIndex: 0, audit: true, wouldDeny: false });
});

test('tcp and pathless requests: http-constrained allow rules never match, deny rules do (fail closed)', () => {
  const ev = compileAccessPolicy(
    policy([
      { from: ['api'], action: 'allow', http: { methods: ['GET'] } },
      { from: ['batch'], action: 'allow' },
      { from: ['batch'], action: 'deny', http: { paths: ['/admin/*'] } },
    ]),
    'deny',
  );
  assert.equal(ev.decide('api', null, null).reason, 'RBAC_DEFAULT_DENY');
  assert.equal(ev.decide('batch', null, null).reason, 'RBAC_DENY_RULE');
  // CONNECT and OPTIONS * have no path: a path-constrained deny applies, an allow does not
  assert.equal(ev.decide('batch', 'OPTIONS', null).reason, 'RBAC_DENY_RULE');
  const allowOnly = compileAccessPolicy(policy([{ from: ['api'], action: 'allow', http: { paths: ['/*'] } }]), 'deny');
  assert.equal(allowOnly.decide('api', 'OPTIONS', null).reason, 'RBAC_DEFAULT_DENY');
  const noHttp = compileAccessPolicy(policy([{ from: ['api'], action: 'deny' }]), 'allow');
  assert.equal(noHttp.decide('api', null, null).reason, 'RBAC_DENY_RULE');
  assert.equal(noHttp.decide('web', null, null).reason, 'RBAC_DEFAULT_ALLOW');
});

test('path tricks, normalized first, do not get around a /admin/* deny', () => {
  const ev = compileAccessPolicy(
    policy([
      { from: ['*'], action: 'allow' },
      { from: ['*'], action: 'deny', http: { paths: ['/admin/*'] } },
    ]),
    'deny',
  );
  for (const target of [
    '/admin',
    '/admin/',
    '//admin',
    '//admin//users',
    '/x/../admin',
    '/x/../admin/users',
    '/./admin',
    '/%2e%2e/admin',
    '/%2E%2e/admin/x',
    '/.%2e/admin',
    '/public/%2e%2e/admin/x',
    '/%61dmin/x',
    '/adm%69n',
    '/admin/%2e/x',
    '/admin/./',
    '/admin?x=/public',
    'http://web/x/../admin',
  ]) {
    assert.equal(httpDecide(ev, 'api', 'GET', target), 'deny', target);
  }
  // encoded separators and NUL are refused before policy, never passed through
  assert.equal(httpDecide(ev, 'api', 'GET', '/admin%2Fusers'), 'refused:ENCODED_SLASH');
  assert.equal(httpDecide(ev, 'api', 'GET', '/public%2F..%2Fadmin'), 'refused:ENCODED_SLASH');
  assert.equal(httpDecide(ev, 'api', 'GET', '/public/..%5Cadmin'), 'refused:ENCODED_BACKSLASH');
  assert.equal(httpDecide(ev, 'api', 'GET', '/public\\..\\admin'), 'refused:BACKSLASH');
  assert.equal(httpDecide(ev, 'api', 'GET', '/admin%00'), 'refused:NUL');
  // and what is not admin still passes
  assert.equal(httpDecide(ev, 'api', 'GET', '/administrator'), 'allow');
  assert.equal(httpDecide(ev, 'api', 'GET', '/public/admin'), 'allow');
});

test('policy paths are normalized like requests; unusable ones are reported', () => {
  const ev = compileAccessPolicy(
    policy([
      { from: ['*'], action: 'deny', http: { paths: ['//admin/./*', '/%7Euser', '/a/.*', '/bad%2F*', '/q?x'] } },
    ]),
    'allow',
  );
  assert.equal(ev.decide('x', 'GET', '/admin').allowed, false);
  assert.equal(ev.decide('x', 'GET', '/admin/y').allowed, false);
  assert.equal(ev.decide('x', 'GET', '/~user').allowed, false);
  assert.equal(ev.decide('x', 'GET', '/a/.hidden').allowed, false); // the partial last segment is kept
  assert.equal(ev.decide('x', 'GET', '/a/visible').allowed, true);
  assert.equal(ev.warnings.length, 2);
  assert.match(ev.warnings[0] ?? '', /paths\[3\]/);
  assert.match(ev.warnings[1] ?? '', /paths\[4\]/);
});
