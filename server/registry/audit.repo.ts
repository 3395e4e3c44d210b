// Audit log: who changed what, when, and between which revisions.
import type { AuditEntry } from '../../shared/api-types.js';
import type { Db } from './db.js';
import { nowIso } from './revision.js';

interface AuditRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  kind: string;
  name: string;
  old_revision: number | null;
  new_revision: number;
}

export class AuditRepo {
  constructor(private readonly db: Db) {}

  record(e: { actor: string; action: string; kind: string; name: string; oldRevision: number | null; newRevision: number }): void {
    this.db
      .prepare('INSERT INTO audit (at, actor, action, kind, name, old_revision, new_revision) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(nowIso(), e.actor, e.action, e.kind, e.name, e.oldRevision, e.newRevision);
  }

  list(opts: { limit?: number; kind?: string } = {}): AuditEntry[] {
    const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
    const rows = (
      opts.kind
        ? this.db.prepare('SELECT * FROM audit WHERE kind = ? ORDER BY id DESC LIMIT ?').all(opts.kind, limit)
        : this.db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit)
    ) as AuditRow[];
    return rows.map((r) => ({
      id: r.id,
      at: r.at,
      actor: r.actor,
      action: r.action,
      kind: r.kind,
      name: r.name,
      oldRevision: r.old_revision,
      newRevision: r.new_revision,
    }));
  }
}
