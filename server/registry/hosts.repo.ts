// Hosts (written when agents join and report) and the service instances they register.
import type { Statement } from 'better-sqlite3';
import type { HostRecord, InstanceRecord } from '../../shared/api-types.js';
import { formatSpiffeId } from '../../shared/identity.js';
import { HmError } from '../../shared/errors.js';
import type { Db } from './db.js';
import type { AuditRepo } from './audit.repo.js';
import { bumpRevision, currentRevision, nowIso } from './revision.js';

export interface ReportedInstance {
  name: string;
  port: number;
  labels: Record<string, string>;
  healthy: boolean;
}

/** What the push hub needs of a host to build its slice. */
export interface HostRouting {
  name: string;
  inboundAddress: string | null;
  inboundPort: number | null;
  allowedServices: string[] | null;
  upstreams: string[];
  joinedAt: string;
  /** Serials (normalized hex) of the host certificates this membership accepts. */
  certSerials: string[];
}

/** Hex serials compare equal however they were printed (case, leading zeros). */
export function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}

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
  inbound_address: string | null;
  inbound_port: number | null;
  applied_hash: string | null;
  upstreams: string | null;
  prev_cert_serial: string | null;
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
    private readonly audit: AuditRepo,
  ) {}

  private readonly statements = new Map<string, Statement<unknown[]>>();
  /** Prepared once per SQL text: routing() and the hello path run once per agent connection. */
  private stmt(sql: string): Statement<unknown[]> {
    let st = this.statements.get(sql);
    if (!st) this.statements.set(sql, (st = this.db.prepare(sql)));
    return st;
  }

  routing(name: string): HostRouting | null {
    const r = this.stmt('SELECT * FROM hosts WHERE name = ?').get(name) as HostRow | undefined;
    if (!r) return null;
    return {
      name: r.name,
      inboundAddress: r.inbound_address,
      inboundPort: r.inbound_port,
      allowedServices: r.allowed_services ? (JSON.parse(r.allowed_services) as string[]) : null,
      upstreams: r.upstreams ? (JSON.parse(r.upstreams) as string[]) : [],
      joinedAt: r.joined_at,
      certSerials: [r.cert_serial, r.prev_cert_serial].filter((x): x is string => !!x).map(normalizeSerial),
    };
  }

  /** A new host, inside the caller's transaction (with the join token's use). */
  insertJoined(h: { name: string; tokenId: string; allowedServices: string[] | null; certSerial: string; certExpiresAt: string }): number {
    const revision = bumpRevision(this.db);
    this.db
      .prepare(
        `INSERT INTO hosts (name, token_id, allowed_services, cert_serial, cert_expires_at, connected, joined_at, revision)
         VALUES (?, ?, ?, ?, ?, 0, ?, ?)`,
      )
      .run(h.name, h.tokenId, h.allowedServices ? JSON.stringify(h.allowedServices) : null, h.certSerial, h.certExpiresAt, nowIso(), revision);
    this.audit.record({ actor: `join-token:${h.tokenId}`, action: 'join', kind: 'Host', name: h.name, oldRevision: null, newRevision: revision });
    return revision;
  }

  /**
   * An agent said hello: record what it reported and make its instances match its host config.
   * Bumps the revision only if the instance set (what other agents see) changed.
   */
  connect(
    name: string,
    r: { agentVersion: string; facts: Record<string, unknown>; inbound: { address: string; port: number }; instances: ReportedInstance[]; upstreams: string[] },
  ): { revision: number; changed: boolean } {
    return this.connectMany([{ name, ...r }]);
  }

  /**
   * Many hellos in one transaction: in a reconnect storm one commit (one fsync) per batch rather
   * than per agent, and at most one new revision.
   */
  connectMany(
    hosts: ReadonlyArray<{ name: string; agentVersion: string; facts: Record<string, unknown>; inbound: { address: string; port: number }; instances: ReportedInstance[]; upstreams: string[] }>,
  ): { revision: number; changed: boolean } {
    return this.db.transaction(() => {
      const now = nowIso();
      const upd = this.stmt('UPDATE hosts SET agent_version = ?, facts = ?, address = ?, inbound_address = ?, inbound_port = ?, upstreams = ?, connected = 1, last_seen_at = ? WHERE name = ?');
      let changed = false;
      for (const r of hosts) {
        upd.run(r.agentVersion, JSON.stringify(r.facts), r.inbound.address, r.inbound.address, r.inbound.port, JSON.stringify(r.upstreams), now, r.name);
        if (this.replaceInstances(r.name, r.inbound.address, r.instances, now)) changed = true;
      }
      return { revision: changed ? bumpRevision(this.db) : currentRevision(this.db), changed };
    }).immediate();
  }

  private replaceInstances(host: string, address: string, instances: ReportedInstance[], now: string): boolean {
    const existing = new Map(
      (this.stmt('SELECT * FROM instances WHERE host = ?').all(host) as InstanceRow[]).map((r) => [r.service, r]),
    );
    let changed = false;
    const upsert = this.stmt(
      `INSERT INTO instances (service, host, address, port, labels, healthy, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (service, host) DO UPDATE SET address = excluded.address, port = excluded.port, labels = excluded.labels, healthy = excluded.healthy, updated_at = excluded.updated_at`,
    );
    for (const i of instances) {
      const labels = JSON.stringify(i.labels);
      const old = existing.get(i.name);
      existing.delete(i.name);
      if (old && old.address === address && old.port === i.port && old.labels === labels && old.healthy === (i.healthy ? 1 : 0)) continue;
      upsert.run(i.name, host, address, i.port, labels, i.healthy ? 1 : 0, now);
      changed = true;
    }
    for (const gone of existing.keys()) {
      this.stmt('DELETE FROM instances WHERE host = ? AND service = ?').run(host, gone);
      changed = true;
    }
    return changed;
  }

  /** Health transitions from an agent. Returns whether anything changed (and so bumped the revision). */
  setHealth(host: string, changes: Array<{ service: string; healthy: boolean }>): boolean {
    return this.db.transaction(() => {
      const now = nowIso();
      let changed = false;
      const upd = this.stmt('UPDATE instances SET healthy = ?, updated_at = ? WHERE host = ? AND service = ? AND healthy != ?');
      for (const c of changes) {
        const v = c.healthy ? 1 : 0;
        if (upd.run(v, now, host, c.service, v).changes > 0) changed = true;
      }
      if (changed) bumpRevision(this.db);
      return changed;
    }).immediate();
  }

  /** After the disconnect grace period: the host's instances stop receiving traffic. */
  markInstancesUnhealthy(host: string): boolean {
    return this.markInstancesUnhealthyMany([host]).length > 0;
  }

  /** The hosts (of `hosts`) whose instances went unhealthy; one transaction, at most one new revision. */
  markInstancesUnhealthyMany(hosts: readonly string[]): string[] {
    return this.db.transaction(() => {
      const upd = this.stmt('UPDATE instances SET healthy = 0, updated_at = ? WHERE host = ? AND healthy = 1');
      const now = nowIso();
      const changed = hosts.filter((h) => upd.run(now, h).changes > 0);
      if (changed.length > 0) bumpRevision(this.db);
      return changed;
    }).immediate();
  }

  /** Connection state and what each agent applied, written in one batch for many hosts. */
  recordSessions(
    rows: Array<{ name: string; connected: boolean; lastSeenAt: string; appliedRevision?: number | null; appliedHash?: string | null; lastNack?: HostRecord['lastNack'] | undefined }>,
  ): void {
    const upd = this.stmt(
      `UPDATE hosts SET connected = ?, last_seen_at = ?,
         applied_revision = coalesce(?, applied_revision), applied_hash = coalesce(?, applied_hash),
         last_nack = CASE WHEN ? = 1 THEN ? ELSE last_nack END
       WHERE name = ?`,
    );
    this.db.transaction(() => {
      for (const r of rows) {
        upd.run(
          r.connected ? 1 : 0,
          r.lastSeenAt,
          r.appliedRevision ?? null,
          r.appliedHash ?? null,
          r.lastNack !== undefined ? 1 : 0,
          r.lastNack ? JSON.stringify(r.lastNack) : null,
          r.name,
        );
      }
    })();
  }

  setCert(name: string, serial: string, expiresAt: string): void {
    this.stmt('UPDATE hosts SET prev_cert_serial = cert_serial, cert_serial = ?, cert_expires_at = ? WHERE name = ?').run(serial, expiresAt, name);
  }

  /** At server start nobody is connected yet, whatever the last run recorded. */
  markAllDisconnected(): void {
    this.stmt('UPDATE hosts SET connected = 0').run();
  }

  delete(name: string, actor: string): number {
    return this.db.transaction(() => {
      const r = this.stmt('DELETE FROM hosts WHERE name = ?').run(name);
      if (r.changes === 0) throw new HmError('HM_ERR_NOT_FOUND', `host "${name}" has not joined`);
      const revision = bumpRevision(this.db);
      this.audit.record({ actor, action: 'delete', kind: 'Host', name, oldRevision: null, newRevision: revision });
      return revision;
    }).immediate();
  }

  appliedHash(name: string): string | null {
    const r = this.stmt('SELECT applied_hash FROM hosts WHERE name = ?').get(name) as { applied_hash: string | null } | undefined;
    return r?.applied_hash ?? null;
  }

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
    return (this.stmt('SELECT * FROM hosts ORDER BY name').all() as HostRow[]).map((r) => this.toRecord(r));
  }

  get(name: string): HostRecord | null {
    const r = this.stmt('SELECT * FROM hosts WHERE name = ?').get(name) as HostRow | undefined;
    return r ? this.toRecord(r) : null;
  }

  count(): number {
    return (this.stmt('SELECT count(*) AS n FROM hosts').get() as { n: number }).n;
  }

  listInstances(service?: string): InstanceRecord[] {
    const rows = (
      service
        ? this.stmt('SELECT * FROM instances WHERE service = ? ORDER BY service, host').all(service)
        : this.stmt('SELECT * FROM instances ORDER BY service, host').all()
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
