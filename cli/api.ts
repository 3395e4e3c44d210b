// The admin API's endpoints, typed. Paths live here and nowhere else in the CLI.
import type { StatsView } from '../shared/golden.js';
import type {
  AdminRole,
  AdminTokenCreated,
  AdminTokenInfo,
  AuditEntry,
  HostRecord,
  InstanceRecord,
  JoinTokenCreated,
  JoinTokenInfo,
  StatusInfo,
} from '../shared/api-types.js';
import type { ResourceKind, StoredResource } from '../shared/resources.js';
import type { ApiClient } from './client.js';

export interface ApplyResult {
  revision: number;
  results: Array<{ kind: string; name: string; action: 'created' | 'updated' | 'unchanged' }>;
}

export interface NewJoinToken {
  ttl?: string;
  singleUse?: boolean;
  services?: string[];
  description?: string;
}

const seg = encodeURIComponent;

export const api = {
  status: (c: ApiClient) => c.get<StatusInfo>('/v1/status'),

  listResources: (c: ApiClient, kind: ResourceKind) =>
    c.get<{ items: StoredResource[]; revision: number }>(`/v1/resources/${kind}`),
  getResource: (c: ApiClient, kind: ResourceKind, name: string) => c.get<StoredResource>(`/v1/resources/${kind}/${seg(name)}`),
  deleteResource: (c: ApiClient, kind: ResourceKind, name: string) =>
    c.delete<{ kind: string; name: string; revision: number }>(`/v1/resources/${kind}/${seg(name)}`),
  apply: (c: ApiClient, documents: unknown[], dryRun: boolean) =>
    c.post<ApplyResult>('/v1/apply', dryRun ? { documents, dryRun: true } : { documents }),

  listHosts: (c: ApiClient) => c.get<{ items: HostRecord[] }>('/v1/hosts'),
  getHost: (c: ApiClient, name: string) => c.get<HostRecord>(`/v1/hosts/${seg(name)}`),
  deleteHost: (c: ApiClient, name: string) => c.delete<{ kind: string; name: string; revision: number }>(`/v1/hosts/${seg(name)}`),
  listInstances: (c: ApiClient, service?: string) => c.get<{ items: InstanceRecord[] }>('/v1/instances', { service }),

  createToken: (c: ApiClient, body: NewJoinToken) => c.post<JoinTokenCreated & { installCommand?: string }>('/v1/tokens', body),
  listTokens: (c: ApiClient) => c.get<{ items: JoinTokenInfo[] }>('/v1/tokens'),
  revokeToken: (c: ApiClient, id: string) => c.delete<JoinTokenInfo>(`/v1/tokens/${seg(id)}`),

  createAdminToken: (c: ApiClient, body: { role: AdminRole; description?: string }) =>
    c.post<AdminTokenCreated>('/v1/admin-tokens', body),
  listAdminTokens: (c: ApiClient) => c.get<{ items: AdminTokenInfo[] }>('/v1/admin-tokens'),
  revokeAdminToken: (c: ApiClient, id: string) => c.delete<AdminTokenInfo | undefined>(`/v1/admin-tokens/${seg(id)}`),

  listAudit: (c: ApiClient, q: { limit?: number; kind?: string }) => c.get<{ items: AuditEntry[] }>('/v1/audit', q),

  stats: (c: ApiClient, q: { service?: string; window?: string }) => c.get<StatsView>('/v1/stats', q),
};
