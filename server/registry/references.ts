// Cross-resource rules a single document's schema cannot express: what a Route, TrafficPolicy or
// AccessPolicy names must exist and fit, and a service has at most one of each. Pure, over a whole
// candidate state, so a batch is judged as the registry would be after it.
import type { Violation } from '../../shared/errors.js';
import type { AccessPolicySpec, Resource, ResourceKind, ServiceSpec } from '../../shared/resources.js';

export type ResourceMap = Map<string, Resource>;

export const keyOf = (kind: ResourceKind, name: string): string => `${kind}/${name}`;

/**
 * Violations of the candidate state that the resources in `touched` (the ones the writer sent)
 * introduce, with `fieldPrefix(key)` naming where each came from in the request.
 */
export function referenceViolations(state: ResourceMap, touched: Iterable<string>, fieldPrefix: (key: string) => string): Violation[] {
  const out: Violation[] = [];
  const owners = new Map<string, string>(); // `${kind}:${service}` → name of first owner
  for (const r of [...state.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (r.kind === 'Route' || r.kind === 'TrafficPolicy' || r.kind === 'AccessPolicy') {
      const svc = (r.spec as { service: string }).service;
      if (!owners.has(`${r.kind}:${svc}`)) owners.set(`${r.kind}:${svc}`, r.name);
    }
  }
  const touchedSet = new Set(touched);
  for (const [key, r] of state) {
    if (r.kind !== 'Route' && r.kind !== 'TrafficPolicy' && r.kind !== 'AccessPolicy') continue;
    const svcName = (r.spec as { service: string }).service;
    const svcKey = keyOf('Service', svcName);
    // The state before this write was consistent, so a problem with an untouched resource was caused
    // by the Service the writer changed: report it there.
    if (!touchedSet.has(key) && !touchedSet.has(svcKey)) continue;
    const p = touchedSet.has(key) ? fieldPrefix(key) : fieldPrefix(svcKey);
    const blame = touchedSet.has(key) ? '' : `${r.kind} "${r.name}": `;
    const svc = state.get(svcKey) as Resource<'Service'> | undefined;
    if (!svc) {
      out.push({ field: `${p}spec.service`, message: `service "${svcName}" does not exist (declare kind: Service name: ${svcName} first, or in the same apply)` });
      continue;
    }
    const owner = owners.get(`${r.kind}:${svcName}`);
    if (owner && owner !== r.name && touchedSet.has(key)) {
      out.push({ field: `${p}spec.service`, message: `service "${svcName}" already has ${r.kind} "${owner}"; a service has at most one` });
    }
    const protocol = (svc.spec as ServiceSpec).protocol;
    if (r.kind === 'Route' && protocol !== 'http') {
      out.push({ field: blame ? `${p}spec.protocol` : `${p}spec.service`, message: `${blame}service "${svcName}" is ${protocol}; routes apply to http services only` });
    }
    if (r.kind === 'AccessPolicy' && protocol !== 'http') {
      (r.spec as AccessPolicySpec).rules.forEach((rule, i) => {
        if (rule.http) {
          out.push({
            field: blame ? `${p}spec.protocol` : `${p}spec.rules[${i}].http`,
            message: `${blame}service "${svcName}" is ${protocol}; method and path rules need an http service`,
          });
        }
      });
    }
  }
  return out;
}

/** Names of resources that still refer to service `name` (they block its deletion). */
export function referrersOf(state: ResourceMap, service: string): string[] {
  const out: string[] = [];
  for (const r of state.values()) {
    if ((r.kind === 'Route' || r.kind === 'TrafficPolicy' || r.kind === 'AccessPolicy') && (r.spec as { service: string }).service === service) {
      out.push(`${r.kind}/${r.name}`);
    }
  }
  return out.sort();
}
