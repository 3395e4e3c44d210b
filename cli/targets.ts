// What `get`, `delete` and friends may name: a declared resource kind (any alias shared/resources.ts
// accepts) or one of the things the server observes (hosts, instances, tokens, audit entries).
import { normalizeKind, RESOURCE_KINDS, type ResourceKind } from '../shared/kinds.js';
import { UsageError } from './errors.js';

export type Target =
  | { type: 'resource'; kind: ResourceKind }
  | { type: 'hosts' }
  | { type: 'instances' }
  | { type: 'tokens' }
  | { type: 'admin-tokens' }
  | { type: 'audit' };

const OBSERVED: Record<string, Exclude<Target, { type: 'resource' }>> = {
  host: { type: 'hosts' },
  hosts: { type: 'hosts' },
  instance: { type: 'instances' },
  instances: { type: 'instances' },
  inst: { type: 'instances' },
  token: { type: 'tokens' },
  tokens: { type: 'tokens' },
  'join-token': { type: 'tokens' },
  'join-tokens': { type: 'tokens' },
  'admin-token': { type: 'admin-tokens' },
  'admin-tokens': { type: 'admin-tokens' },
  audit: { type: 'audit' },
};

export function resolveTarget(text: string): Target {
  const observed = OBSERVED[text.toLowerCase()];
  if (observed) return observed;
  const kind = normalizeKind(text);
  if (kind) return { type: 'resource', kind };
  throw new UsageError(`unknown kind "${text}": expected one of ${knownKinds().join(', ')}`);
}

export function knownKinds(): string[] {
  return [...RESOURCE_KINDS.map(plural), 'hosts', 'instances', 'tokens', 'admin-tokens', 'audit'];
}

/** `service/web`: how kubectl names an object, and what `apply` prints per document. */
export function objectRef(kind: string, name: string): string {
  return `${kind.toLowerCase()}/${name}`;
}

/** `services`, `trafficpolicies`, `meshes`: for messages like "no services found". */
export function plural(kind: string): string {
  const lower = kind.toLowerCase();
  if (lower.endsWith('y')) return `${lower.slice(0, -1)}ies`;
  if (lower.endsWith('s') || lower.endsWith('sh')) return `${lower}es`;
  return `${lower}s`;
}
