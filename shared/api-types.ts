// Shapes the admin API returns, shared by the server that builds them and the CLI that prints them.

export type AdminRole = 'admin' | 'viewer';

export interface HostRecord {
  name: string;
  spiffeId: string;
  address: string | null;
  agentVersion: string | null;
  facts: Record<string, unknown> | null;
  connected: boolean;
  appliedRevision: number | null;
  lastNack: { revision: number; error: string; at: string } | null;
  certExpiresAt: string | null;
  lastSeenAt: string | null;
  joinedAt: string;
}

export interface InstanceRecord {
  /** `<service>@<host>` */
  id: string;
  service: string;
  host: string;
  address: string;
  port: number;
  labels: Record<string, string>;
  healthy: boolean;
  updatedAt: string;
}

export interface JoinTokenInfo {
  id: string;
  description: string | null;
  singleUse: boolean;
  services: string[] | null;
  createdAt: string;
  expiresAt: string;
  usedCount: number;
  revokedAt: string | null;
}

/** Only the create call ever returns the secret. */
export interface JoinTokenCreated extends JoinTokenInfo {
  token: string;
}

export interface AdminTokenInfo {
  id: string;
  role: AdminRole;
  description: string | null;
  createdAt: string;
  revokedAt: string | null;
}

export interface AdminTokenCreated extends AdminTokenInfo {
  token: string;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  kind: string;
  name: string;
  oldRevision: number | null;
  newRevision: number;
}

export interface CaRootInfo {
  pem: string;
  /** `sha256:<hex>` of the DER certificate */
  fingerprint: string;
  trustDomain: string;
  notAfter: string;
}

export interface StatusInfo {
  revision: number;
  trustDomain: string;
  /** `sha256:<hex>` of the mesh root: what agents pin (`caFingerprint` in agent.yaml). */
  caFingerprint: string;
  version: string;
  startedAt: string;
  hosts: Array<Pick<HostRecord, 'name' | 'connected' | 'agentVersion' | 'appliedRevision' | 'lastNack' | 'certExpiresAt' | 'lastSeenAt'> & { behind: boolean }>;
  counts: Record<string, number>;
}
