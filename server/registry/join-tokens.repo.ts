// Join tokens: what an agent presents once, with its CSR, to become a host of the mesh.
import { HmError } from '../../shared/errors.js';
import type { JoinTokenCreated, JoinTokenInfo } from '../../shared/api-types.js';
import { mintToken, parseToken, secretMatches } from '../auth/secrets.js';
import type { AuditRepo } from './audit.repo.js';
import type { Db } from './db.js';
import { currentRevision, nowIso } from './revision.js';

interface Row {
  id: string;
  secret_hash: Buffer;
  description: string | null;
  single_use: number;
  services: string | null;
  created_at: string;
  expires_at: string;
  used_count: number;
  revoked_at: string | null;
}

function toInfo(r: Row): JoinTokenInfo {
  return {
    id: r.id,
    description: r.description,
    singleUse: r.single_use === 1,
    services: r.services ? (JSON.parse(r.services) as string[]) : null,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    usedCount: r.used_count,
    revokedAt: r.revoked_at,
  };
}

export class JoinTokensRepo {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditRepo,
  ) {}

  create(opts: { ttlMs: number; singleUse: boolean; services: string[] | null; description: string | null; actor: string }): JoinTokenCreated {
    const minted = mintToken('hmj');
    const now = new Date();
    const row: Row = {
      id: minted.id,
      secret_hash: minted.hash,
      description: opts.description,
      single_use: opts.singleUse ? 1 : 0,
      services: opts.services ? JSON.stringify([...new Set(opts.services)].sort()) : null,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + opts.ttlMs).toISOString(),
      used_count: 0,
      revoked_at: null,
    };
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO join_tokens (id, secret_hash, description, single_use, services, created_at, expires_at, used_count, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(row.id, row.secret_hash, row.description, row.single_use, row.services, row.created_at, row.expires_at, 0, null);
      this.audit.record({ actor: opts.actor, action: 'create', kind: 'JoinToken', name: row.id, oldRevision: null, newRevision: currentRevision(this.db) });
    })();
    return { ...toInfo(row), token: minted.token };
  }

  list(): JoinTokenInfo[] {
    return (this.db.prepare('SELECT * FROM join_tokens ORDER BY created_at DESC').all() as Row[]).map(toInfo);
  }

  get(id: string): JoinTokenInfo | null {
    const r = this.db.prepare('SELECT * FROM join_tokens WHERE id = ?').get(id) as Row | undefined;
    return r ? toInfo(r) : null;
  }

  revoke(id: string, actor: string): JoinTokenInfo {
    return this.db.transaction(() => {
      const r = this.db.prepare('SELECT * FROM join_tokens WHERE id = ?').get(id) as Row | undefined;
      if (!r) throw new HmError('HM_ERR_NOT_FOUND', `join token ${id} does not exist`);
      if (!r.revoked_at) {
        r.revoked_at = nowIso();
        this.db.prepare('UPDATE join_tokens SET revoked_at = ? WHERE id = ?').run(r.revoked_at, id);
        this.audit.record({ actor, action: 'revoke', kind: 'JoinToken', name: id, oldRevision: null, newRevision: currentRevision(this.db) });
      }
      return toInfo(r);
    })();
  }

  /**
   * The token's info if it may be used now, else HM_ERR_TOKEN_INVALID. Every refusal is the same
   * error: a caller learns nothing about which tokens exist.
   */
  check(token: string, now = new Date()): JoinTokenInfo {
    const refused = new HmError('HM_ERR_TOKEN_INVALID', 'join token refused: it is unknown, expired, revoked or already used; create a new one with `hostmesh token create`');
    const parts = parseToken('hmj', token);
    if (!parts) throw refused;
    const r = this.db.prepare('SELECT * FROM join_tokens WHERE id = ?').get(parts.id) as Row | undefined;
    if (!r || !secretMatches(parts.secret, r.secret_hash)) throw refused;
    if (r.revoked_at || new Date(r.expires_at) <= now || (r.single_use === 1 && r.used_count > 0)) throw refused;
    return toInfo(r);
  }

  /** Check and count one use; call inside the transaction that records what the use was for. */
  consume(token: string, now = new Date()): JoinTokenInfo {
    const info = this.check(token, now);
    this.db.prepare('UPDATE join_tokens SET used_count = used_count + 1 WHERE id = ?').run(info.id);
    return { ...info, usedCount: info.usedCount + 1 };
  }
}
