// Read-only views: hosts, instances, status, audit, the CA root, and liveness.
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { HmError } from '../../../shared/errors.js';
import type { CaRootInfo, HostRecord, StatusInfo } from '../../../shared/api-types.js';
import { actorOf } from '../auth.js';
import type { ApiContext } from '../context.js';

export function meshStateRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { registry, ca } = ctx;

  app.get('/healthz', { config: { access: 'public' }, schema: { tags: ['server'], summary: 'Liveness' } }, async () => ({ status: 'ok' }));

  app.get('/v1/ca/root', { config: { access: 'public' }, schema: { tags: ['server'], summary: 'The mesh root certificate and its fingerprint (no auth)' } }, async (): Promise<CaRootInfo> => ({
    pem: ca.rootPem,
    fingerprint: ca.fingerprint,
    trustDomain: ca.trustDomain,
    notAfter: ca.notAfter.toISOString(),
  }));

  /** The registry's record, with live connection state from the push hub. */
  const live = (h: HostRecord): HostRecord & { inSync: boolean } => {
    const sync = ctx.hub?.syncState(h.name) ?? null;
    const rec: HostRecord = sync
      ? { ...h, connected: true, appliedRevision: sync.appliedRevision, lastNack: sync.lastNack, lastSeenAt: sync.lastSeenAt }
      : { ...h, connected: false };
    const applied = sync ? sync.appliedHash : registry.hosts.appliedHash(h.name);
    const desired = ctx.hub?.desiredHash(h.name) ?? null;
    return { ...rec, inSync: desired !== null && applied === desired };
  };

  app.get('/v1/hosts', { schema: { tags: ['hosts'], summary: 'Hosts that joined the mesh' } }, async () => ({ items: registry.hosts.list().map(live) }));

  app.delete('/v1/hosts/:name', {
    schema: { tags: ['hosts'], summary: 'Remove a host: its certificates stop being accepted and its instances leave', params: Type.Object({ name: Type.String({ maxLength: 253 }) }) },
    handler: async (req) => {
      const { name } = req.params as { name: string };
      const revision = registry.hosts.delete(name, actorOf(req));
      ctx.hub?.disconnect(name, 'host removed from the mesh');
      registry.notify();
      return { kind: 'Host', name, revision };
    },
  });

  app.get('/v1/hosts/:name', { schema: { tags: ['hosts'], summary: 'One host', params: Type.Object({ name: Type.String({ maxLength: 253 }) }) } }, async (req) => {
    const { name } = req.params as { name: string };
    const h = registry.hosts.get(name);
    if (!h) throw new HmError('HM_ERR_NOT_FOUND', `host "${name}" has not joined`);
    return live(h);
  });

  app.get('/v1/instances', {
    schema: { tags: ['hosts'], summary: 'Service instances registered by agents', querystring: Type.Object({ service: Type.Optional(Type.String({ maxLength: 63 })) }) },
    handler: async (req) => ({ items: registry.hosts.listInstances((req.query as { service?: string }).service) }),
  });

  app.get('/v1/audit', {
    schema: {
      tags: ['server'],
      summary: 'Audit log, newest first',
      querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), kind: Type.Optional(Type.String({ maxLength: 64 })) }),
    },
    handler: async (req) => {
      const q = req.query as { limit?: number; kind?: string };
      return { items: registry.audit.list({ limit: q.limit, kind: q.kind }) };
    },
  });

  app.get('/v1/status', { schema: { tags: ['server'], summary: 'Revision, trust domain and every host with its applied revision' } }, async (): Promise<StatusInfo> => {
    const revision = registry.revision();
    const hosts = registry.hosts.list().map(live);
    return {
      revision,
      trustDomain: registry.trustDomain,
      caFingerprint: ca.fingerprint,
      version: ctx.version,
      startedAt: ctx.startedAt.toISOString(),
      hosts: hosts.map((h) => ({
        name: h.name,
        connected: h.connected,
        agentVersion: h.agentVersion,
        appliedRevision: h.appliedRevision,
        lastNack: h.lastNack,
        certExpiresAt: h.certExpiresAt,
        lastSeenAt: h.lastSeenAt,
        behind: !h.inSync,
      })),
      counts: { ...registry.resources.counts(), hosts: hosts.length, instances: registry.hosts.listInstances().length },
    };
  });
}
