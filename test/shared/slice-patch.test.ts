// Deltas: whatever changed between two slices, the patch the server computes rebuilds on the agent a
// slice with exactly the server's hash; and the patch carries only what changed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hashOf } from '../../shared/canonical.js';
import type { Endpoint, Slice, UpstreamSlice } from '../../shared/protocol.js';
import { sliceValidator } from '../../shared/protocol.js';
import { applySlicePatch, diffSlices, PatchError } from '../../shared/slice-patch.js';

const ep = (host: string, port = 15443, healthy = true, labels: Record<string, string> = {}): Endpoint => ({ host, address: '127.0.0.1', port, labels, healthy });

function upstream(endpoints: Endpoint[], protocol: 'http' | 'tcp' = 'http'): UpstreamSlice {
  return { spec: { protocol, port: 8080 }, route: null, trafficPolicy: null, endpoints };
}

function base(): Slice {
  return {
    mesh: { trustDomain: 'td.test', mtls: 'strict', defaultAccess: 'deny', certTTL: '24h', accessLog: false },
    caBundle: ['-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n'],
    services: { web: { spec: { protocol: 'http', port: 8080 }, accessPolicy: null } },
    upstreams: {
      payments: upstream([ep('a-1'), ep('b-1'), ep('c-1')]),
      orders: upstream([ep('o-1')], 'tcp'),
    },
  };
}

/** Serialized as on the wire, so nothing shared by reference survives into the agent's copy. */
const wire = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function roundTrip(from: Slice, to: Slice): ReturnType<typeof diffSlices> {
  const patch = wire(diffSlices(from, to));
  const rebuilt = applySlicePatch(wire(from), patch);
  assert.equal(hashOf(rebuilt), hashOf(to));
  assert.deepEqual(sliceValidator.violations(rebuilt, 'slice'), []);
  return patch;
}

test('identical slices give an empty patch', () => {
  assert.deepEqual(diffSlices(base(), base()), {});
});

test('an endpoint that joins, leaves or changes health travels alone', () => {
  const b = base();
  const joined = base();
  joined.upstreams['payments']!.endpoints.splice(1, 0, ep('aa-2'));
  assert.deepEqual(roundTrip(b, joined), { upstreams: { payments: { endpoints: [ep('aa-2')] } } });

  const left = base();
  left.upstreams['payments']!.endpoints.splice(0, 1);
  assert.deepEqual(roundTrip(b, left), { upstreams: { payments: { removed: ['a-1'] } } });

  const sick = base();
  sick.upstreams['payments']!.endpoints[2] = ep('c-1', 15443, false);
  assert.deepEqual(roundTrip(b, sick), { upstreams: { payments: { endpoints: [ep('c-1', 15443, false)] } } });

  const relabelled = base();
  relabelled.upstreams['payments']!.endpoints[0] = ep('a-1', 15443, true, { version: 'v2' });
  assert.deepEqual(roundTrip(b, relabelled), { upstreams: { payments: { endpoints: [ep('a-1', 15443, true, { version: 'v2' })] } } });
});

test('specs, routes, policies, services, mesh and CA bundle changes round-trip', () => {
  const b = base();
  const n = base();
  n.upstreams['payments']!.route = { service: 'payments', rules: [{ destinations: [{ subset: { version: 'v2' }, weight: 100 }] }] };
  n.upstreams['payments']!.trafficPolicy = { service: 'payments', loadBalancer: 'round-robin' };
  n.upstreams['orders']!.spec = { protocol: 'tcp', port: 9000 };
  n.upstreams['inventory'] = upstream([ep('i-1'), ep('i-2')]);
  delete n.services['web'];
  n.services['api'] = { spec: { protocol: 'http', port: 8081 }, accessPolicy: null };
  n.mesh = { ...n.mesh, defaultAccess: 'allow' };
  n.caBundle = [...n.caBundle, '-----BEGIN CERTIFICATE-----\nB\n-----END CERTIFICATE-----\n'];
  const patch = roundTrip(b, n);
  assert.equal(patch.services?.['web'], null);
  assert.equal(patch.upstreams?.['payments']?.endpoints, undefined, 'unchanged endpoints are not resent');
  assert.ok(patch.upstreams?.['inventory']?.spec, 'a new upstream comes whole');

  const dropped = base();
  delete dropped.upstreams['orders'];
  assert.deepEqual(roundTrip(b, dropped), { upstreams: { orders: null } });
  // And back: the removed upstream returns whole.
  roundTrip(dropped, b);
});

test('random sequences of changes always rebuild the server slice exactly', () => {
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  let current = base();
  for (let step = 0; step < 300; step++) {
    const next = wire(current);
    const names = Object.keys(next.upstreams);
    const u = next.upstreams[names[rnd(names.length)]!]!;
    switch (rnd(5)) {
      case 0: {
        const host = `h-${rnd(40)}`;
        if (!u.endpoints.some((e) => e.host === host)) u.endpoints.push(ep(host, 15000 + rnd(100)));
        break;
      }
      case 1:
        if (u.endpoints.length > 0) u.endpoints.splice(rnd(u.endpoints.length), 1);
        break;
      case 2:
        if (u.endpoints.length > 0) u.endpoints[rnd(u.endpoints.length)]!.healthy = rnd(2) === 0;
        break;
      case 3:
        next.upstreams[`svc-${rnd(6)}`] = upstream([ep(`x-${rnd(9)}`)]);
        break;
      case 4:
        if (names.length > 1) delete next.upstreams[names[rnd(names.length)]!];
        break;
    }
    for (const up of Object.values(next.upstreams)) up.endpoints.sort((a, b) => (a.host < b.host ? -1 : a.host > b.host ? 1 : 0));
    roundTrip(current, next);
    current = next;
  }
});

test('a patch that adds an upstream without its spec is refused, and the base is not touched', () => {
  const b = base();
  const before = hashOf(b);
  assert.throws(() => applySlicePatch(b, { upstreams: { inventory: { endpoints: [ep('i-1')] } } }), PatchError);
  const patched = applySlicePatch(b, { upstreams: { payments: { removed: ['a-1'] } } });
  assert.equal(patched.upstreams['payments']!.endpoints.length, 2);
  assert.equal(hashOf(b), before, 'the config in force is not modified by a patch');
});
