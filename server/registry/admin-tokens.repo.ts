// Admin API tokens with a role. Only hashes are stored; the secret is shown once, at creation.
import { HmError } from '../../shared/errors.js';
import type { AdminRole, AdminTokenCreated, AdminTokenInfo } from '../../shared/api-types.js';
import { mintToken, parseToken, secretMatches } from '../auth/secrets.js';
import type { AuditRepo } from './audit.repo.js';
import type { Db } from './db.js';
import { currentRevision, nowIso } from './revision.js';

interface Row {
  id: string;
  secret_hash: Buffer;
  role: AdminRole;
  description: string | null;
  created_at: string;
  revoked_at: string | null;
}

const toInfo = (r: Row): AdminTokenInfo => ({ id: r.id, role: r.role, description: r.description, createdAt: r.created_at, revokedAt: r.revoked_at });

export class AdminTokensRepo {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditRepo,
  ) {}

  create(opts: { role: AdminRole; description: string | null; actor: string }): AdminTokenCreated {
    const minted = mintToken('hma');
    const createdAt = nowIso();
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO admin_tokens (id, secret_hash, role, description, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(minted.id, minted.hash, opts.role, opts.description, createdAt);
      this.audit.record({ actor: opts.actor, action: 'create', kind: 'AdminToken', name: minted.id, oldRevision: null, newRevision: currentRevision(this.db) });
    })();
    return { id: minted.id, role: opts.role, description: opts.description, createdAt, revokedAt: null, token: minted.token };
  }

  list(): AdminTokenInfo[] {
    return (this.db.prepare('SELECT * FROM admin_tokens ORDER BY created_at').all() as Row[]).map(toInfo);
  }

  activeCount(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM admin_tokens WHERE revoked_at IS NULL').get() as { n: number }).n;
  }

  revoke(id: string, actor: string): AdminTokenInfo {
    return this.db.transaction(() => {
      const r = this.db.prepare('SELECT * FROM admin_tokens WHERE id = ?').get(id) as Row | undefined;
      if (!r) throw new HmError('HM_ERR_NOT_FOUND', `admin token ${id} does not exist`);
      if (!r.revoked_at) {
        if (r.role === 'admin') {
          const admins = (this.db.prepare("SELECT count(*) AS n FROM admin_tokens WHERE revoked_at IS NULL AND role = 'admin'").get() as { n: number }).n;
          if (admins <= 1) throw new HmError('HM_ERR_CONFLICT', 'refusing to revoke the last admin token: create another admin token first');
        }
        r.revoked_at = nowIso();
        this.db.prepare('UPDATE admin_tokens SET revoked_at = ? WHERE id = ?').run(r.revoked_at, id);
        this.audit.record({ actor, action: 'revoke', kind: 'AdminToken', name: id, oldRevision: null, newRevision: currentRevision(this.db) });
      }
      return toInfo(r);
    })();
  }

  /** The token's id and role, or null. Constant-time on the secret; junk is rejected before any lookup. */
  authenticate(token: string): { id: string; role: AdminRole } | null {
    const parts = parseToken('hma', token);
    if (!parts) return null;
    const r = this.db.prepare('SELECT * FROM admin_tokens WHERE id = ?').get(parts.id) as Row | undefined;
    if (!r || r.revoked_at || !secretMatches(parts.secret, r.secret_hash)) return null;
    return { id: r.id, role: r.role };
  }
}
