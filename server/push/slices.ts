// Per-agent slices. A World is built once per registry revision (every resource, every endpoint);
// each host's slice is then assembled from it: the services it registers, the upstreams it calls.
// Upstream parts are built once per World and shared, and whole slices are cached by the pair
// (local services, upstreams), so thousands of agents cost little more than the distinct shapes.
import { hashOf } from '../../shared/canonical.js';
import type { AccessPolicySpec, MeshSpec, RouteSpec, ServiceSpec, TrafficPolicySpec } from '../../shared/resources.js';
import type { Endpoint, LocalServiceSlice, MeshSlice, Slice, UpstreamSlice } from '../../shared/protocol.js';
import { diffSlices } from '../../shared/slice-patch.js';
import type { Registry } from '../registry/registry.js';

export const MESH_DEFAULTS = { mtls: 'strict', defaultAccess: 'deny', certTTL: '24h', accessLog: false, disconnectGracePeriod: '30s' } as const;

export interface World {
  revision: number;
  mesh: MeshSlice;
  meshSpec: MeshSpec;
  caBundle: string[];
  services: Map<string, ServiceSpec>;
  accessPolicies: Map<string, AccessPolicySpec>;
  upstreams: Map<string, UpstreamSlice>;
  /** host → the services it registers */
  hostServices: Map<string, string[]>;
  cache: Map<string, BuiltSlice>;
  /** Delta messages by "base hash>target hash", serialized once per World (null: the snapshot is as small). */
  deltas: Map<string, string | null>;
}

export interface BuiltSlice {
  slice: Slice;
  hash: string;
  /** The snapshot message as sent, serialized once per World and shared by every host with this slice. */
  wire?: string;
}

interface EndpointRow {
  service: string;
  host: string;
  inbound_address: string | null;
  inbound_port: number | null;
  labels: string;
  healthy: number;
}

export function buildWorld(registry: Registry, caBundle: string[]): World {
  // One read transaction so the world is one consistent revision.
  return registry.db.transaction((): World => {
    const revision = registry.revision();
    const resources = registry.resources.list();
    const services = new Map<string, ServiceSpec>();
    const routes = new Map<string, RouteSpec>();
    const trafficPolicies = new Map<string, TrafficPolicySpec>();
    const accessPolicies = new Map<string, AccessPolicySpec>();
    let meshSpec: MeshSpec = {};
    for (const r of resources) {
      if (r.kind === 'Service') services.set(r.name, r.spec as ServiceSpec);
      else if (r.kind === 'Route') routes.set((r.spec as RouteSpec).service, r.spec as RouteSpec);
      else if (r.kind === 'TrafficPolicy') trafficPolicies.set((r.spec as TrafficPolicySpec).service, r.spec as TrafficPolicySpec);
      else if (r.kind === 'AccessPolicy') accessPolicies.set((r.spec as AccessPolicySpec).service, r.spec as AccessPolicySpec);
      else if (r.kind === 'Mesh') meshSpec = r.spec as MeshSpec;
    }
    const endpoints = new Map<string, Endpoint[]>();
    const rows = registry.db
      .prepare(
        `SELECT i.service, i.host, h.inbound_address, h.inbound_port, i.labels, i.healthy
         FROM instances i JOIN hosts h ON h.name = i.host ORDER BY i.service, i.host`,
      )
      .all() as EndpointRow[];
    const hostServices = new Map<string, string[]>();
    for (const row of rows) {
      const hs = hostServices.get(row.host);
      if (hs) hs.push(row.service);
      else hostServices.set(row.host, [row.service]);
      if (!row.inbound_address || !row.inbound_port) continue;
      let list = endpoints.get(row.service);
      if (!list) endpoints.set(row.service, (list = []));
      list.push({ host: row.host, address: row.inbound_address, port: row.inbound_port, labels: JSON.parse(row.labels), healthy: row.healthy === 1 });
    }
    const upstreams = new Map<string, UpstreamSlice>();
    for (const [name, spec] of services) {
      upstreams.set(name, { spec, route: routes.get(name) ?? null, trafficPolicy: trafficPolicies.get(name) ?? null, endpoints: endpoints.get(name) ?? [] });
    }
    const mesh: MeshSlice = {
      trustDomain: registry.trustDomain,
      mtls: meshSpec.mtls ?? MESH_DEFAULTS.mtls,
      defaultAccess: meshSpec.defaultAccess ?? MESH_DEFAULTS.defaultAccess,
      certTTL: meshSpec.certTTL ?? MESH_DEFAULTS.certTTL,
      accessLog: meshSpec.accessLog ?? MESH_DEFAULTS.accessLog,
    };
    return { revision, mesh, meshSpec, caBundle, services, accessPolicies, upstreams, hostServices, cache: new Map(), deltas: new Map() };
  })();
}

/** The slice for a host that registers `localServices` and calls `upstreamNames`. */
export function sliceFor(world: World, localServices: readonly string[], upstreamNames: readonly string[]): BuiltSlice {
  const locals = [...new Set(localServices)].sort();
  const ups = [...new Set(upstreamNames)].sort();
  const key = `${locals.join(',')}|${ups.join(',')}`;
  const cached = world.cache.get(key);
  if (cached) return cached;
  const services: Record<string, LocalServiceSlice> = {};
  for (const name of locals) services[name] = { spec: world.services.get(name) ?? null, accessPolicy: world.accessPolicies.get(name) ?? null };
  const upstreams: Record<string, UpstreamSlice> = {};
  for (const name of ups) {
    const u = world.upstreams.get(name);
    if (u) upstreams[name] = u;
  }
  const slice: Slice = { mesh: world.mesh, caBundle: world.caBundle, services, upstreams };
  const built = { slice, hash: hashOf(slice) };
  world.cache.set(key, built);
  return built;
}

/** The snapshot message for `built`, serialized once per World and shared by every host with this slice. */
export function fullWire(world: World, built: BuiltSlice): string {
  built.wire ??= JSON.stringify({ type: 'snapshot', revision: world.revision, hash: built.hash, slice: built.slice });
  return built.wire;
}

/**
 * The delta message from the slice `base` (hash `baseHash`, which the agent acked) to `built`, or
 * null when it would not be meaningfully smaller than the whole snapshot.
 */
export function deltaWire(world: World, built: BuiltSlice, baseHash: string, base: Slice): string | null {
  const key = `${baseHash}>${built.hash}`;
  const cached = world.deltas.get(key);
  if (cached !== undefined) return cached;
  const wire = JSON.stringify({ type: 'delta', revision: world.revision, hash: built.hash, baseHash, patch: diffSlices(base, built.slice) });
  const result = wire.length * 2 < fullWire(world, built).length ? wire : null;
  world.deltas.set(key, result);
  return result;
}
