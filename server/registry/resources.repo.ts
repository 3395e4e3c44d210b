// Declared resources: list, get, apply (one or many, all or nothing) and delete, with optimistic
// concurrency on the revision each resource was last written at.
import { isDeepStrictEqual } from 'node:util';
import { HmError, validationError, type Violation } from '../../shared/errors.js';
import {
  API_VERSION,
  RESOURCE_KINDS,
  resourceViolations,
  unknownKindError,
  type Resource,
  type ResourceKind,
  type StoredResource,
} from '../../shared/resources.js';
import type { AuditRepo } from './audit.repo.js';
import type { Db } from './db.js';
import { keyOf, referenceViolations, referrersOf, type ResourceMap } from './references.js';
import { bumpRevision, currentRevision, nowIso } from './revision.js';

interface ResourceRow {
  kind: string;
  name: string;
  labels: string | null;
  spec: string;
  revision: number;
  created_at: string;
  updated_at: string;
}

export type ApplyAction = 'created' | 'updated' | 'unchanged';

export interface ApplyResult {
  revision: number;
  results: Array<{ kind: ResourceKind; name: string; action: ApplyAction; revision: number }>;
}

export interface ApplyOptions {
  actor: string;
  dryRun?: boolean;
  /** Refuse to overwrite an existing resource (POST semantics). */
  createOnly?: boolean;
  /** Prefix for field names in errors: `documents[i].` for a batch, '' for a single PUT. */
  fieldPrefix?: (index: number) => string;
  /** Overrides `status.revision` of document i as the expected version (from If-Match). */
  expectedRevision?: (index: number) => number | undefined;
  /** Extra checks that need server context (e.g. the Mesh trust domain must match the CA). */
  extraViolations?: (doc: Resource, prefix: string) => Violation[];
}

function toStored(row: ResourceRow): StoredResource {
  const r: StoredResource = {
    apiVersion: API_VERSION,
    kind: row.kind as ResourceKind,
    name: row.name,
    spec: JSON.parse(row.spec),
    status: { revision: row.revision, createdAt: row.created_at, updatedAt: row.updated_at },
  };
  if (row.labels) r.labels = JSON.parse(row.labels);
  return r;
}

export class ResourcesRepo {
  constructor(
    private readonly db: Db,
    private readonly audit: AuditRepo,
  ) {}

  list(kind?: ResourceKind): StoredResource[] {
    const rows = (
      kind
        ? this.db.prepare('SELECT * FROM resources WHERE kind = ? ORDER BY name').all(kind)
        : this.db.prepare('SELECT * FROM resources ORDER BY kind, name').all()
    ) as ResourceRow[];
    return rows.map(toStored);
  }

  get(kind: ResourceKind, name: string): StoredResource | null {
    const row = this.db.prepare('SELECT * FROM resources WHERE kind = ? AND name = ?').get(kind, name) as ResourceRow | undefined;
    return row ? toStored(row) : null;
  }

  private stateMap(): ResourceMap {
    const m: ResourceMap = new Map();
    for (const r of this.list()) m.set(keyOf(r.kind, r.name), r);
    return m;
  }

  /**
   * Validate every document, then check the whole resulting state, then write, all inside one
   * transaction: any error leaves the registry exactly as it was.
   */
  apply(docs: unknown[], opts: ApplyOptions): ApplyResult {
    const prefix = opts.fieldPrefix ?? ((i: number) => (docs.length > 1 ? `documents[${i}].` : ''));
    if (docs.length === 0) throw new HmError('HM_ERR_VALIDATION', 'nothing to apply: give at least one document', { violations: [{ field: 'documents', message: 'must not be empty' }] });

    // 1. Each document on its own.
    const violations: Violation[] = [];
    const valid: Resource[] = [];
    docs.forEach((doc, i) => {
      const v = resourceViolations(doc, prefix(i));
      if (v === 'unknown-kind') {
        const e = unknownKindError((doc as { kind?: unknown }).kind);
        throw new HmError('HM_ERR_UNKNOWN_KIND', `${prefix(i)}kind: ${e.message}`);
      }
      violations.push(...v);
      if (v.length === 0) {
        const r = doc as Resource;
        violations.push(...(opts.extraViolations?.(r, prefix(i)) ?? []));
        valid.push(r);
      }
    });
    if (violations.length > 0) throw validationError(violations, docs.length > 1 ? 'documents' : 'resource');

    // 2. No name twice in one batch.
    const indexOf = new Map<string, number>();
    valid.forEach((r, i) => {
      const key = keyOf(r.kind, r.name);
      if (indexOf.has(key)) {
        violations.push({ field: `${prefix(i)}name`, message: `${r.kind} "${r.name}" appears twice in this apply (also document ${indexOf.get(key)})` });
      } else indexOf.set(key, i);
    });
    if (violations.length > 0) throw validationError(violations, 'documents');

    const txn = this.db.transaction((): ApplyResult => {
      const state = this.stateMap();
      const plan: Array<{ r: Resource; action: ApplyAction; old: StoredResource | undefined }> = [];
      valid.forEach((r, i) => {
        const key = keyOf(r.kind, r.name);
        const old = state.get(key) as StoredResource | undefined;
        const expected = opts.expectedRevision?.(i) ?? r.status?.revision;
        if (old && opts.createOnly) {
          throw new HmError('HM_ERR_ALREADY_EXISTS', `${r.kind} "${r.name}" already exists (update it with PUT)`);
        }
        if (expected !== undefined && (!old || old.status.revision !== expected)) {
          throw new HmError(
            'HM_ERR_CONFLICT',
            old
              ? `${r.kind} "${r.name}" was changed at revision ${old.status.revision}, after the revision ${expected} you named; get it again and reapply`
              : `${r.kind} "${r.name}" no longer exists (you named revision ${expected})`,
          );
        }
        const same = old && isDeepStrictEqual(old.spec, r.spec) && isDeepStrictEqual(old.labels ?? {}, r.labels ?? {});
        plan.push({ r, action: !old ? 'created' : same ? 'unchanged' : 'updated', old });
        state.set(key, r);
      });

      const refs = referenceViolations(
        state,
        valid.map((r) => keyOf(r.kind, r.name)),
        (key) => prefix(indexOf.get(key) ?? 0),
      );
      if (refs.length > 0) throw validationError(refs, docs.length > 1 ? 'documents' : 'resource');

      const oldRevision = currentRevision(this.db);
      const changed = plan.some((p) => p.action !== 'unchanged');
      if (!changed || opts.dryRun) {
        return {
          revision: oldRevision,
          results: plan.map((p) => ({ kind: p.r.kind, name: p.r.name, action: p.action, revision: p.old?.status.revision ?? oldRevision })),
        };
      }
      const revision = bumpRevision(this.db);
      const now = nowIso();
      const upsert = this.db.prepare(
        `INSERT INTO resources (kind, name, labels, spec, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (kind, name) DO UPDATE SET labels = excluded.labels, spec = excluded.spec, revision = excluded.revision, updated_at = excluded.updated_at`,
      );
      for (const p of plan) {
        if (p.action === 'unchanged') continue;
        const labels = p.r.labels && Object.keys(p.r.labels).length > 0 ? JSON.stringify(p.r.labels) : null;
        upsert.run(p.r.kind, p.r.name, labels, JSON.stringify(p.r.spec), revision, now, now);
        this.audit.record({
          actor: opts.actor,
          action: p.action === 'created' ? 'create' : 'update',
          kind: p.r.kind,
          name: p.r.name,
          oldRevision: p.old?.status.revision ?? null,
          newRevision: revision,
        });
      }
      return {
        revision,
        results: plan.map((p) => ({ kind: p.r.kind, name: p.r.name, action: p.action, revision: p.action === 'unchanged' ? p.old!.status.revision : revision })),
      };
    });
    // IMMEDIATE: take the write lock before reading, so two writers (even in two processes)
    // serialize and the version check cannot race.
    return txn.immediate();
  }

  delete(kind: ResourceKind, name: string, opts: { actor: string; expectedRevision?: number }): { kind: ResourceKind; name: string; revision: number } {
    const txn = this.db.transaction(() => {
      const old = this.get(kind, name);
      if (!old) throw new HmError('HM_ERR_NOT_FOUND', `${kind} "${name}" does not exist`);
      if (opts.expectedRevision !== undefined && old.status.revision !== opts.expectedRevision) {
        throw new HmError('HM_ERR_CONFLICT', `${kind} "${name}" was changed at revision ${old.status.revision}, after the revision ${opts.expectedRevision} you named`);
      }
      if (kind === 'Service') {
        const users = referrersOf(this.stateMap(), name);
        if (users.length > 0) throw new HmError('HM_ERR_IN_USE', `Service "${name}" is still used by ${users.join(', ')}; delete those first`);
      }
      this.db.prepare('DELETE FROM resources WHERE kind = ? AND name = ?').run(kind, name);
      const revision = bumpRevision(this.db);
      this.audit.record({ actor: opts.actor, action: 'delete', kind, name, oldRevision: old.status.revision, newRevision: revision });
      return { kind, name, revision };
    });
    return txn.immediate();
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = Object.fromEntries(RESOURCE_KINDS.map((k) => [k, 0]));
    for (const row of this.db.prepare('SELECT kind, count(*) AS n FROM resources GROUP BY kind').all() as Array<{ kind: string; n: number }>) {
      out[row.kind] = row.n;
    }
    return out;
  }
}
