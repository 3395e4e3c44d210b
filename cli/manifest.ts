// A stored resource as a document `apply -f` takes back: fields in the order people write them,
// with `status.revision` kept so that re-applying an edited copy is checked for lost updates.
import type { Resource, StoredResource } from '../shared/resources.js';

export function toManifest(r: StoredResource | Resource): Resource {
  const out: Resource = { apiVersion: r.apiVersion ?? 'hostmesh/v1', kind: r.kind, name: r.name } as Resource;
  if (r.labels && Object.keys(r.labels).length > 0) out.labels = r.labels;
  out.spec = r.spec;
  if (r.status) out.status = r.status;
  return out;
}
