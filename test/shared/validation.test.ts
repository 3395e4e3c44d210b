// shared/validation.ts: validators compiled on first use give the same answers and the same
// `{field, message}` violations as when they were compiled up front.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Type from 'typebox';
import { isHmError } from '../../shared/errors.js';
import { HostConfigSchema } from '../../shared/host-config.js';
import { compile, describePattern, pointerToField } from '../../shared/validation.js';

test('pointers become field names', () => {
  assert.equal(pointerToField('/spec/rules/0/weight'), 'spec.rules[0].weight');
  assert.equal(pointerToField('/a~1b/c~0d', 'pre'), 'pre.a/b.c~d');
});

test('violations: unknown fields, missing ones, bounds, patterns, deepest first', () => {
  describePattern('^[a-z]+$', 'must be lower-case letters');
  const v = compile(
    Type.Object(
      {
        name: Type.String({ pattern: '^[a-z]+$' }),
        port: Type.Integer({ minimum: 1 }),
        inner: Type.Optional(Type.Object({ mode: Type.Union([Type.Literal('a'), Type.Literal('b')]) }, { additionalProperties: false })),
      },
      { additionalProperties: false },
    ),
  );
  assert.equal(v.check({ name: 'ok', port: 1 }), true);
  assert.deepEqual(v.violations({ name: 'ok', port: 1 }), []);
  assert.deepEqual(v.violations({ name: 'Bad', port: 0, inner: { mode: 'c', x: 1 }, extra: true }, 'doc'), [
    { field: 'doc.inner.x', message: 'unknown field' },
    { field: 'doc.inner.mode', message: 'must be equal to constant' },
    { field: 'doc.extra', message: 'unknown field' },
    { field: 'doc.name', message: 'must be lower-case letters' },
    { field: 'doc.port', message: 'must be >= 1' },
  ]);
  assert.deepEqual(v.violations({}), [
    { field: 'name', message: 'is required' },
    { field: 'port', message: 'is required' },
  ]);
});

test('parse returns the value or throws HM_ERR_VALIDATION naming the first field', () => {
  const v = compile(Type.Object({ n: Type.Number() }));
  const value = { n: 1 };
  assert.equal(v.parse(value), value);
  assert.throws(
    () => v.parse({ n: 'x' }, 'config'),
    (e: unknown) => isHmError(e) && e.code === 'HM_ERR_VALIDATION' && e.message === 'invalid config: n: must be number',
  );
});

test('a shared schema checks the same before and after its first use', () => {
  const v = compile(HostConfigSchema);
  assert.equal(v.schema, HostConfigSchema);
  const bad = { server: 'http://x', caFingerprint: 'sha256:00', services: [{ name: 'web', port: 70000 }] };
  const first = v.violations(bad);
  assert.deepEqual(v.violations(bad), first);
  assert.deepEqual(first.map((x) => x.field), ['services[0].port', 'server', 'caFingerprint']);
  assert.equal(v.check({ server: 'https://x:1', caFingerprint: `sha256:${'0'.repeat(64)}` }), true);
});
