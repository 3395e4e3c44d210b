// The columns of each table the CLI prints. `now` is a parameter so ages are testable.
import type { AdminTokenInfo, AuditEntry, HostRecord, InstanceRecord, JoinTokenInfo, StatusInfo } from '../shared/api-types.js';
import type {
  AccessPolicySpec,
  MeshSpec,
  ResourceKind,
  RouteSpec,
  ServiceSpec,
  StoredResource,
  TrafficPolicySpec,
} from '../shared/resources.js';
import type { Column } from './output.js';
import { age, ago, until } from './time-format.js';

type R = StoredResource;
const dash = (v: unknown): string => (v === undefined || v === null || v === '' ? '-' : String(v));
const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

export function resourceColumns(kind: ResourceKind, now = Date.now()): Column<R>[] {
  const name: Column<R> = { header: 'NAME', value: (r) => r.name };
  const revision: Column<R> = { header: 'REVISION', value: (r) => dash(r.status?.revision) };
  const created: Column<R> = { header: 'AGE', value: (r) => age(r.status?.createdAt, now) };
  const service: Column<R> = { header: 'SERVICE', value: (r) => (r.spec as { service?: string }).service ?? '-' };
  switch (kind) {
    case 'Service':
      return [
        name,
        { header: 'PROTOCOL', value: (r) => (r.spec as ServiceSpec).protocol },
        { header: 'PORT', value: (r) => String((r.spec as ServiceSpec).port) },
        revision,
        created,
      ];
    case 'Route':
      return [name, service, { header: 'RULES', value: (r) => String((r.spec as RouteSpec).rules.length) }, revision, created];
    case 'TrafficPolicy':
      return [
        name,
        service,
        { header: 'LB', value: (r) => dash((r.spec as TrafficPolicySpec).loadBalancer) },
        { header: 'CONNECT-TIMEOUT', value: (r) => dash((r.spec as TrafficPolicySpec).connectTimeout) },
        revision,
        created,
      ];
    case 'AccessPolicy':
      return [
        name,
        service,
        // enforce is what an unset mode means; audit is the one worth seeing at a glance.
        { header: 'MODE', value: (r) => (r.spec as AccessPolicySpec).mode ?? 'enforce' },
        { header: 'RULES', value: (r) => String((r.spec as AccessPolicySpec).rules.length) },
        revision,
        created,
      ];
    case 'Mesh':
      return [
        name,
        { header: 'TRUST-DOMAIN', value: (r) => dash((r.spec as MeshSpec).trustDomain) },
        { header: 'MTLS', value: (r) => dash((r.spec as MeshSpec).mtls) },
        { header: 'DEFAULT-ACCESS', value: (r) => dash((r.spec as MeshSpec).defaultAccess) },
        { header: 'CERT-TTL', value: (r) => dash((r.spec as MeshSpec).certTTL) },
        revision,
        created,
      ];
  }
}

export function hostColumns(now = Date.now()): Column<HostRecord>[] {
  return [
    { header: 'NAME', value: (h) => h.name },
    { header: 'ADDRESS', value: (h) => dash(h.address) },
    { header: 'CONNECTED', value: (h) => yesNo(h.connected) },
    { header: 'AGENT', value: (h) => dash(h.agentVersion) },
    { header: 'REVISION', value: (h) => dash(h.appliedRevision) },
    { header: 'LAST-SEEN', value: (h) => (h.connected ? 'now' : ago(h.lastSeenAt, now)) },
  ];
}

export function instanceColumns(): Column<InstanceRecord>[] {
  return [
    { header: 'SERVICE', value: (i) => i.service },
    { header: 'HOST', value: (i) => i.host },
    { header: 'ADDRESS', value: (i) => i.address },
    { header: 'PORT', value: (i) => String(i.port) },
    { header: 'HEALTHY', value: (i) => yesNo(i.healthy) },
    { header: 'LABELS', value: (i) => formatLabels(i.labels) },
  ];
}

export function tokenColumns(now = Date.now()): Column<JoinTokenInfo>[] {
  return [
    { header: 'ID', value: (t) => t.id },
    { header: 'DESCRIPTION', value: (t) => dash(t.description) },
    { header: 'SERVICES', value: (t) => (t.services && t.services.length > 0 ? t.services.join(',') : 'any') },
    { header: 'SINGLE-USE', value: (t) => yesNo(t.singleUse) },
    { header: 'USED', value: (t) => String(t.usedCount) },
    { header: 'EXPIRES', value: (t) => until(t.expiresAt, now) },
    { header: 'STATE', value: (t) => tokenState(t, now) },
  ];
}

export function tokenState(t: JoinTokenInfo, now = Date.now()): string {
  if (t.revokedAt) return 'revoked';
  if (Date.parse(t.expiresAt) <= now) return 'expired';
  if (t.singleUse && t.usedCount > 0) return 'used';
  return 'active';
}

export function adminTokenColumns(now = Date.now()): Column<AdminTokenInfo>[] {
  return [
    { header: 'ID', value: (t) => t.id },
    { header: 'ROLE', value: (t) => t.role },
    { header: 'DESCRIPTION', value: (t) => dash(t.description) },
    { header: 'AGE', value: (t) => age(t.createdAt, now) },
    { header: 'STATE', value: (t) => (t.revokedAt ? 'revoked' : 'active') },
  ];
}

export function auditColumns(): Column<AuditEntry>[] {
  return [
    { header: 'ID', value: (a) => String(a.id) },
    { header: 'TIME', value: (a) => a.at.replace(/\.\d+Z$/, 'Z') },
    { header: 'ACTOR', value: (a) => a.actor },
    { header: 'ACTION', value: (a) => a.action },
    { header: 'KIND', value: (a) => a.kind },
    { header: 'NAME', value: (a) => a.name },
    { header: 'REVISION', value: (a) => (a.oldRevision === null ? String(a.newRevision) : `${a.oldRevision}->${a.newRevision}`) },
  ];
}

export type StatusHost = StatusInfo['hosts'][number];

export function statusHostColumns(current: number, now = Date.now()): Column<StatusHost>[] {
  return [
    { header: 'NAME', value: (h) => h.name },
    { header: 'CONNECTED', value: (h) => yesNo(h.connected) },
    { header: 'AGENT', value: (h) => dash(h.agentVersion) },
    { header: 'APPLIED/CURRENT', value: (h) => `${dash(h.appliedRevision)}/${current}${h.behind ? ' (behind)' : ''}` },
    { header: 'CERT-EXPIRES', value: (h) => until(h.certExpiresAt, now) },
    { header: 'LAST-SEEN', value: (h) => (h.connected ? 'now' : ago(h.lastSeenAt, now)) },
  ];
}

export function formatLabels(labels: Record<string, string> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(',');
}
