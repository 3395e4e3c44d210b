// Hosts (written when agents join and report) and the service instances they register.
import type { HostRecord, InstanceRecord } from '../../shared/api-types.js';
import { formatSpiffeId } from '../../shared/identity.js';
import type { Db } from './db.js';

interface HostRow {
  name: string;
  address: string | null;
  agent_version: string | null;
  facts: string | null;
  token_id: string | null;
  allowed_services: string | null;
  applied_revision: number | null;
  last_nack: string | null;
  cert_serial: string | null;
  cert_expires_at: string | null;
  connected: number;
  last_seen_at: string | null;
  joined_at: string;
  revision: number;
}

interface InstanceRow {
  service: string;
  host: string;
  address: string;
  port: number;
  labels: string;
  healthy: number;
  updated_at: string;
}

export class HostsRepo {
  constructor(
    private readonly db: Db,
    private readonly trustDomain: string,
  ) {}

  private toRecord(r: HostRow): HostRecord {
    return {
      name: r.name,
      spiffeId: formatSpiffeId({ trustDomain: this.trustDomain, kind: 'host', name: r.name }),
      address: r.address,
      agentVersion: r.agent_version,
      facts: r.facts ? (JSON.parse(r.facts) as Record<string, unknown>) : null,
      connected: r.connected === 1,
      appliedRevision: r.applied_revision,
      lastNack: r.last_nack ? (JSON.parse(r.last_nack) as HostRecord['lastNack']) : null,
      certExpiresAt: r.cert_expires_at,
      lastSeenAt: r.last_seen_at,
      joinedAt: r.joined_at,
    };
  }

  list(): HostRecord[] {
    return (this.db.prepare('SELECT * FROM hosts ORDER BY name').all() as HostRow[]).map((r) => this.toRecord(r));
  }

  get(name: string): HostRecord | null {
    const r = this.db.prepare('SELECT * FROM hosts WHERE name = ?').get(name) as HostRow | undefined;
    return r ? this.toRecord(r) : null;
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM hosts').get() as { n: number }).n;
  }

  listInstances(service?: string): InstanceRecord[] {
    const rows = (
      service
        ? this.db.prepare('SELECT * FROM instances WHERE service = ? ORDER BY service, host').all(service)
        : this.db.prepare('SELECT * FROM instances ORDER BY service, host').all()
    ) as InstanceRow[];
    return rows.map((r) => ({
      id: `${r.service}@${r.host}`,
      service: r.service,
      host: r.host,
      address: r.address,
      port: r.port,
      labels: JSON.parse(r.labels) as Record<string, string>,
      healthy: r.healthy === 1,
      updatedAt: r.updated_at,
    }));
  }
}
