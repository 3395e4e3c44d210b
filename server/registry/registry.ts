// The registry facade: one database, its repositories, and a change signal for the push hub.
import { EventEmitter } from 'node:events';
import { AdminTokensRepo } from './admin-tokens.repo.js';
import { AuditRepo } from './audit.repo.js';
import { openDatabase, type Db } from './db.js';
import { HostsRepo } from './hosts.repo.js';
import { JoinTokensRepo } from './join-tokens.repo.js';
import { ResourcesRepo } from './resources.repo.js';
import { currentRevision } from './revision.js';
import { HmError } from '../../shared/errors.js';

export const DEFAULT_TRUST_DOMAIN = 'hostmesh.local';

export class Registry {
  readonly audit: AuditRepo;
  readonly resources: ResourcesRepo;
  readonly joinTokens: JoinTokensRepo;
  readonly adminTokens: AdminTokensRepo;
  readonly hosts: HostsRepo;
  /** Emits `change` (revision) after a commit that bumped the revision. */
  readonly events = new EventEmitter();
  private lastSeen: number;

  private constructor(
    readonly db: Db,
    readonly trustDomain: string,
  ) {
    this.audit = new AuditRepo(db);
    this.resources = new ResourcesRepo(db, this.audit);
    this.joinTokens = new JoinTokensRepo(db, this.audit);
    this.adminTokens = new AdminTokensRepo(db, this.audit);
    this.hosts = new HostsRepo(db, trustDomain, this.audit);
    this.lastSeen = currentRevision(db);
  }

  /**
   * Open (creating on first start) the registry in `file`. The trust domain is fixed when the data
   * dir is first used: `requestedTrustDomain` may name it then, and must agree with it afterwards.
   */
  static open(file: string, requestedTrustDomain?: string): Registry {
    const db = openDatabase(file);
    try {
      const row = db.prepare("SELECT value FROM meta WHERE key = 'trust_domain'").get() as { value: string } | undefined;
      if (row && requestedTrustDomain && row.value !== requestedTrustDomain) {
        throw new HmError(
          'HM_ERR_STARTUP',
          `data dir was created for trust domain "${row.value}", not "${requestedTrustDomain}": drop --trust-domain or use a new data dir`,
        );
      }
      const trustDomain = row?.value ?? requestedTrustDomain ?? DEFAULT_TRUST_DOMAIN;
      if (!row) db.prepare("INSERT INTO meta (key, value) VALUES ('trust_domain', ?)").run(trustDomain);
      return new Registry(db, trustDomain);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  revision(): number {
    return currentRevision(this.db);
  }

  /** Call after any write; tells listeners if the revision moved. Cheap when it did not. */
  notify(): void {
    const rev = currentRevision(this.db);
    if (rev !== this.lastSeen) {
      this.lastSeen = rev;
      this.events.emit('change', rev);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
