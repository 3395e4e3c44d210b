// Path normalization: the table of tricks, target forms, and that the fast path returns the input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardTarget, isPathError, normalizePath, normalizeTarget, type NormalizedTarget } from '../../agent/policy/normalize-path.js';

test('normalization table', () => {
  const table: Array<[string, string]> = [
    ['/', '/'],
    ['/admin', '/admin'],
    ['//admin', '/admin'],
    ['///admin//x//', '/admin/x/'],
    ['/x/../admin', '/admin'],
    ['/../admin', '/admin'],
    ['/../../..', '/'],
    ['/%2e%2e/admin', '/admin'],
    ['/%2E%2E/admin', '/admin'],
    ['/.%2e/admin', '/admin'],
    ['/x/%2e%2e/admin/', '/admin/'],
    ['/a/./b/', '/a/b/'],
    ['/a/.', '/a/'],
    ['/a/b/..', '/a/'],
    ['/a/b/../', '/a/'],
    ['/a/..', '/'],
    ['/%7Euser', '/~user'],
    ['/%7euser', '/~user'],
    ['/%61dmin', '/admin'],
    ['/a%2db%5fc%2E', '/a-b_c.'],
    ['/a%3bb', '/a%3Bb'],
    ['/%c3%a9t%C3%A9', '/%C3%A9t%C3%A9'],
    ['/a%25b', '/a%25b'],
    ['/a%252e%252e/x', '/a%252e%252e/x'], // double encoding is left alone: only %25 is an escape
    ['/.well-known/x', '/.well-known/x'],
    ['/a/..b/c', '/a/..b/c'],
    ['/a/...', '/a/...'],
    ['/a;p=1/b', '/a;p=1/b'],
    ['/a:b@c!$&\'()*+,=', '/a:b@c!$&\'()*+,='],
  ];
  for (const [input, want] of table) assert.equal(normalizePath(input), want, input);
});

test('refusals', () => {
  const table: Array<[string, string]> = [
    ['/a/%2Fb', 'ENCODED_SLASH'],
    ['/a%2fb', 'ENCODED_SLASH'],
    ['/a%5cb', 'ENCODED_BACKSLASH'],
    ['/a%5Cb', 'ENCODED_BACKSLASH'],
    ['/a\\b', 'BACKSLASH'],
    ['/a%00', 'NUL'],
    ['/a\x00b', 'NUL'],
    ['/a%', 'BAD_PERCENT'],
    ['/a%2', 'BAD_PERCENT'],
    ['/a%zz', 'BAD_PERCENT'],
    ['/a%%41', 'BAD_PERCENT'],
    ['', 'BAD_TARGET'],
    ['admin', 'BAD_TARGET'],
    ['/a b', 'BAD_TARGET'],
    ['/a\tb', 'BAD_TARGET'],
    ['/caf\xe9', 'BAD_TARGET'],
    ['/a#frag', 'BAD_TARGET'],
    ['/a?q', 'BAD_TARGET'], // a path has no query; normalizeTarget splits it off first
  ];
  for (const [input, code] of table) {
    const r = normalizePath(input);
    assert.equal(r, code, JSON.stringify(input));
    assert.ok(isPathError(r));
  }
});

test('a clean path is returned as the same string', () => {
  const p = '/api/v1/users/42';
  assert.equal(normalizePath(p), p);
  const t = normalizeTarget('GET', '/api/v1/users/42') as NormalizedTarget;
  assert.equal(t.path, '/api/v1/users/42');
  assert.equal(forwardTarget(t), '/api/v1/users/42');
});

test('target forms: query kept verbatim, absolute-form converted, * and authority-form restricted', () => {
  const t = (method: string, target: string): NormalizedTarget | string => normalizeTarget(method, target);

  assert.deepEqual(t('GET', '//x/../a/%7e?q=%2F..%2f&x=//'), { path: '/a/~', query: 'q=%2F..%2f&x=//', authority: null });
  assert.equal(forwardTarget(t('GET', '//x/../a/%7e?q=%2F..%2f&x=//') as NormalizedTarget), '/a/~?q=%2F..%2f&x=//');
  assert.deepEqual(t('GET', '/a?'), { path: '/a', query: '', authority: null });
  assert.equal(forwardTarget(t('GET', '/a?') as NormalizedTarget), '/a?');
  assert.equal(t('GET', '/a?q#frag'), 'BAD_TARGET');
  assert.equal(t('GET', '/a/%2F?q'), 'ENCODED_SLASH');

  assert.deepEqual(t('GET', 'http://web.local:8080/x/../admin?y=1'), { path: '/admin', query: 'y=1', authority: 'web.local:8080' });
  assert.deepEqual(t('GET', 'HTTPS://web'), { path: '/', query: null, authority: 'web' });
  assert.deepEqual(t('GET', 'http://web?z'), { path: '/', query: 'z', authority: 'web' });
  assert.equal(t('GET', 'http://user@web/'), 'BAD_TARGET');
  assert.equal(t('GET', 'http:///x'), 'BAD_TARGET');
  assert.equal(t('GET', 'ftp://web/x'), 'BAD_TARGET');

  assert.deepEqual(t('OPTIONS', '*'), { path: null, query: null, authority: null });
  assert.equal(forwardTarget(t('OPTIONS', '*') as NormalizedTarget), '*');
  assert.equal(t('GET', '*'), 'BAD_TARGET');

  assert.deepEqual(t('CONNECT', 'db.local:5432'), { path: null, query: null, authority: 'db.local:5432' });
  assert.equal(forwardTarget(t('CONNECT', 'db.local:5432') as NormalizedTarget), 'db.local:5432');
  assert.equal(t('CONNECT', 'db.local'), 'BAD_TARGET');
  assert.equal(t('CONNECT', '/x'), 'BAD_TARGET');
  assert.equal(t('GET', 'db.local:5432'), 'BAD_TARGET');
});
