// Slices as patches: the server describes a new slice as what differs from the one an agent last
// acked, and the agent rebuilds the whole slice from its own copy. Both sides live here so they
// cannot drift apart; the agent still checks the rebuilt slice's hash, so a wrong patch is a nack,
// never a wrong config.
import { canonicalJson } from './canonical.js';
import type { Endpoint, Slice, SlicePatch, UpstreamPatch, UpstreamSlice } from './protocol.js';

/** Same JSON value. Specs come from the same parsed rows on the server, so this is rarely more than a few short strings. */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  return canonicalJson(a) === canonicalJson(b);
}

function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  if (a.address !== b.address || a.port !== b.port || a.healthy !== b.healthy) return false;
  const ak = Object.keys(a.labels);
  if (ak.length !== Object.keys(b.labels).length) return false;
  for (const k of ak) if (a.labels[k] !== b.labels[k]) return false;
  return true;
}

function diffUpstream(base: UpstreamSlice | undefined, next: UpstreamSlice): UpstreamPatch | undefined {
  if (base === next) return undefined;
  if (!base) return { spec: next.spec, route: next.route, trafficPolicy: next.trafficPolicy, endpoints: next.endpoints };
  const patch: UpstreamPatch = {};
  if (!same(base.spec, next.spec)) patch.spec = next.spec;
  if (!same(base.route, next.route)) patch.route = next.route;
  if (!same(base.trafficPolicy, next.trafficPolicy)) patch.trafficPolicy = next.trafficPolicy;
  if (base.endpoints !== next.endpoints) {
    const before = new Map(base.endpoints.map((e) => [e.host, e]));
    const changed: Endpoint[] = [];
    for (const e of next.endpoints) {
      const old = before.get(e.host);
      before.delete(e.host);
      if (!old || !sameEndpoint(old, e)) changed.push(e);
    }
    if (changed.length > 0) patch.endpoints = changed;
    if (before.size > 0) patch.removed = [...before.keys()];
  }
  return Object.keys(patch).length > 0 ? patch : undefined;
}

/** What turns `base` into `next`. */
export function diffSlices(base: Slice, next: Slice): SlicePatch {
  const patch: SlicePatch = {};
  if (!same(base.mesh, next.mesh)) patch.mesh = next.mesh;
  if (!same(base.caBundle, next.caBundle)) patch.caBundle = next.caBundle;
  const services: NonNullable<SlicePatch['services']> = {};
  for (const [name, s] of Object.entries(next.services)) if (!same(base.services[name], s)) services[name] = s;
  for (const name of Object.keys(base.services)) if (!Object.hasOwn(next.services, name)) services[name] = null;
  if (Object.keys(services).length > 0) patch.services = services;
  const upstreams: NonNullable<SlicePatch['upstreams']> = {};
  for (const [name, u] of Object.entries(next.upstreams)) {
    const p = diffUpstream(Object.hasOwn(base.upstreams, name) ? base.upstreams[name] : undefined, u);
    if (p) upstreams[name] = p;
  }
  for (const name of Object.keys(base.upstreams)) if (!Object.hasOwn(next.upstreams, name)) upstreams[name] = null;
  if (Object.keys(upstreams).length > 0) patch.upstreams = upstreams;
  return patch;
}

export class PatchError extends Error {
  override name = 'PatchError';
}

function byHost(a: Endpoint, b: Endpoint): number {
  // The server orders endpoints by host with SQLite's binary collation; host names are ASCII.
  return a.host < b.host ? -1 : a.host > b.host ? 1 : 0;
}

function patchUpstream(name: string, base: UpstreamSlice | undefined, p: UpstreamPatch): UpstreamSlice {
  if (!base && (p.spec === undefined || p.route === undefined || p.trafficPolicy === undefined)) {
    throw new PatchError(`upstream "${name}" is new but the patch does not carry its spec, route and trafficPolicy`);
  }
  let endpoints = base?.endpoints ?? [];
  if (p.endpoints !== undefined || p.removed !== undefined) {
    const byName = new Map(endpoints.map((e) => [e.host, e]));
    for (const h of p.removed ?? []) byName.delete(h);
    for (const e of p.endpoints ?? []) byName.set(e.host, e);
    endpoints = [...byName.values()].sort(byHost);
  }
  return {
    spec: p.spec ?? base!.spec,
    route: p.route !== undefined ? p.route : base!.route,
    trafficPolicy: p.trafficPolicy !== undefined ? p.trafficPolicy : base!.trafficPolicy,
    endpoints,
  };
}

/** `base` with `patch` applied; `base` is not modified (it stays the config in force until the switch). */
export function applySlicePatch(base: Slice, patch: SlicePatch): Slice {
  const services = { ...base.services };
  for (const [name, s] of Object.entries(patch.services ?? {})) {
    if (s === null) delete services[name];
    else services[name] = s;
  }
  const upstreams = { ...base.upstreams };
  for (const [name, p] of Object.entries(patch.upstreams ?? {})) {
    if (p === null) delete upstreams[name];
    else upstreams[name] = patchUpstream(name, Object.hasOwn(base.upstreams, name) ? base.upstreams[name] : undefined, p);
  }
  return { mesh: patch.mesh ?? base.mesh, caBundle: patch.caBundle ?? base.caBundle, services, upstreams };
}
