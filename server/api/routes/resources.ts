// /v1/resources and /v1/apply: CRUD for declared resources, all writes through the registry's
// single transactional apply so a PUT and a multi-document apply obey the same rules.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { HmError } from '../../../shared/errors.js';
import { AnyResourceSchema, normalizeKind, unknownKindError, type Resource, type ResourceKind, type MeshSpec } from '../../../shared/resources.js';
import type { Violation } from '../../../shared/errors.js';
import { actorOf } from '../auth.js';
import type { ApiContext } from '../context.js';
import { DOCS_ONLY } from '../validator.js';

const KindParams = Type.Object({ kind: Type.String({ maxLength: 64 }) });
const NameParams = Type.Object({ kind: Type.String({ maxLength: 64 }), name: Type.String({ maxLength: 253 }) });

function kindOf(text: string): ResourceKind {
  const k = normalizeKind(text);
  if (!k) throw unknownKindError(text);
  return k;
}

/** `If-Match: 12`, `"12"` or `W/"12"` → 12. */
function ifMatch(req: FastifyRequest): number | undefined {
  const h = req.headers['if-match'];
  if (h === undefined) return undefined;
  const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(String(h).trim());
  if (!m) throw new HmError('HM_ERR_BAD_REQUEST', 'If-Match must be the revision number you last read, e.g. If-Match: "12"');
  return Number(m[1]);
}

export function resourceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { registry } = ctx;
  const td = registry.trustDomain;
  const meshTrustDomain = (doc: Resource, prefix: string): Violation[] => {
    const want = doc.kind === 'Mesh' ? (doc.spec as MeshSpec).trustDomain : undefined;
    return want && want !== td
      ? [{ field: `${prefix}spec.trustDomain`, message: `must be "${td}", the trust domain this server's CA was created for` }]
      : [];
  };

  app.get('/v1/resources', {
    schema: { tags: ['resources'], summary: 'List resources, optionally of one kind', querystring: Type.Object({ kind: Type.Optional(Type.String()) }) },
    handler: async (req) => {
      const { kind } = req.query as { kind?: string };
      return { items: registry.resources.list(kind ? kindOf(kind) : undefined), revision: registry.revision() };
    },
  });

  app.get('/v1/resources/:kind', {
    schema: { tags: ['resources'], summary: 'List resources of one kind', params: KindParams },
    handler: async (req) => {
      const { kind } = req.params as { kind: string };
      return { items: registry.resources.list(kindOf(kind)), revision: registry.revision() };
    },
  });

  app.get('/v1/resources/:kind/:name', {
    schema: { tags: ['resources'], summary: 'Get one resource', params: NameParams },
    handler: async (req, reply) => {
      const { kind, name } = req.params as { kind: string; name: string };
      const k = kindOf(kind);
      const r = registry.resources.get(k, name);
      if (!r) throw new HmError('HM_ERR_NOT_FOUND', `${k} "${name}" does not exist`);
      void reply.header('etag', `"${r.status.revision}"`);
      return r;
    },
  });

  app.put('/v1/resources/:kind/:name', {
    schema: {
      tags: ['resources'],
      summary: 'Create or replace one resource (If-Match: "<revision>" for optimistic concurrency)',
      params: NameParams,
      body: { ...AnyResourceSchema, ...DOCS_ONLY },
    },
    handler: async (req, reply) => {
      const { kind, name } = req.params as { kind: string; name: string };
      const k = kindOf(kind);
      const body = req.body as Record<string, unknown> | null;
      if (body && typeof body === 'object' && !Array.isArray(body)) {
        if (body['kind'] !== undefined && body['kind'] !== k) {
          throw new HmError('HM_ERR_VALIDATION', `kind: is "${String(body['kind'])}" but the URL says ${k}`, { violations: [{ field: 'kind', message: `must be ${k}, as in the URL` }] });
        }
        if (body['name'] !== undefined && body['name'] !== name) {
          throw new HmError('HM_ERR_VALIDATION', `name: is "${String(body['name'])}" but the URL says ${name}`, { violations: [{ field: 'name', message: `must be ${name}, as in the URL` }] });
        }
      }
      const doc = body && typeof body === 'object' && !Array.isArray(body) ? { ...body, kind: k, name } : body;
      const expected = ifMatch(req);
      const result = registry.resources.apply([doc], {
        actor: actorOf(req),
        fieldPrefix: () => '',
        expectedRevision: () => expected,
        extraViolations: meshTrustDomain,
      });
      registry.notify();
      const stored = registry.resources.get(k, name)!;
      void reply.code(result.results[0]!.action === 'created' ? 201 : 200).header('etag', `"${stored.status.revision}"`);
      return stored;
    },
  });

  app.post('/v1/resources', {
    schema: { tags: ['resources'], summary: 'Create one resource (409 if it exists)', body: { ...AnyResourceSchema, ...DOCS_ONLY } },
    handler: async (req, reply) => {
      registry.resources.apply([req.body], { actor: actorOf(req), createOnly: true, fieldPrefix: () => '', extraViolations: meshTrustDomain });
      registry.notify();
      const doc = req.body as Resource;
      void reply.code(201);
      return registry.resources.get(doc.kind, doc.name);
    },
  });

  app.delete('/v1/resources/:kind/:name', {
    schema: { tags: ['resources'], summary: 'Delete one resource', params: NameParams },
    handler: async (req) => {
      const { kind, name } = req.params as { kind: string; name: string };
      const out = registry.resources.delete(kindOf(kind), name, { actor: actorOf(req), expectedRevision: ifMatch(req) });
      registry.notify();
      return out;
    },
  });

  app.post('/v1/apply', {
    schema: {
      tags: ['resources'],
      summary: 'Apply several resources at once, all or nothing',
      body: Type.Object(
        { documents: Type.Array(Type.Unknown(), { maxItems: 1000 }), dryRun: Type.Optional(Type.Boolean()) },
        { additionalProperties: false },
      ),
    },
    handler: async (req) => {
      const { documents, dryRun } = req.body as { documents: unknown[]; dryRun?: boolean };
      const result = registry.resources.apply(documents, {
        actor: actorOf(req),
        dryRun: dryRun === true,
        fieldPrefix: (i) => `documents[${i}].`,
        extraViolations: meshTrustDomain,
      });
      registry.notify();
      return { revision: result.revision, dryRun: dryRun === true, results: result.results };
    },
  });
}
