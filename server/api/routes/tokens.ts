// Join tokens (for agents) and admin tokens (for people and scripts).
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { HmError } from '../../../shared/errors.js';
import { DURATION_PATTERN, parseDuration } from '../../../shared/duration.js';
import { NAME_PATTERN } from '../../../shared/identity.js';
import type { AdminRole } from '../../../shared/api-types.js';
import { actorOf } from '../auth.js';
import type { ApiContext } from '../context.js';

const MAX_TTL_MS = 365 * 86_400_000;
const IdParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) });

export function tokenRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { registry } = ctx;

  app.post('/v1/tokens', {
    schema: {
      tags: ['tokens'],
      summary: 'Create a join token for agents',
      body: Type.Object(
        {
          ttl: Type.Optional(Type.String({ pattern: DURATION_PATTERN, description: 'default 1h' })),
          singleUse: Type.Optional(Type.Boolean()),
          services: Type.Optional(Type.Array(Type.String({ pattern: NAME_PATTERN }), { minItems: 1, maxItems: 256 })),
          description: Type.Optional(Type.String({ maxLength: 256 })),
        },
        { additionalProperties: false },
      ),
    },
    handler: async (req, reply) => {
      const body = (req.body ?? {}) as { ttl?: string; singleUse?: boolean; services?: string[]; description?: string };
      const ttlMs = parseDuration(body.ttl ?? '1h');
      if (ttlMs < 60_000 || ttlMs > MAX_TTL_MS) {
        throw new HmError('HM_ERR_VALIDATION', 'ttl: must be between 1m and 365d', { violations: [{ field: 'ttl', message: 'must be between 1m and 365d' }] });
      }
      const created = registry.joinTokens.create({
        ttlMs,
        singleUse: body.singleUse === true,
        services: body.services ?? null,
        description: body.description ?? null,
        actor: actorOf(req),
      });
      void reply.code(201);
      return created;
    },
  });

  app.get('/v1/tokens', { schema: { tags: ['tokens'], summary: 'List join tokens (never their secrets)' } }, async () => ({
    items: registry.joinTokens.list(),
  }));

  app.delete('/v1/tokens/:id', { schema: { tags: ['tokens'], summary: 'Revoke a join token', params: IdParams } }, async (req) =>
    registry.joinTokens.revoke((req.params as { id: string }).id, actorOf(req)),
  );

  app.post('/v1/admin-tokens', {
    schema: {
      tags: ['tokens'],
      summary: 'Create an admin API token',
      body: Type.Object(
        { role: Type.Union([Type.Literal('admin'), Type.Literal('viewer')]), description: Type.Optional(Type.String({ maxLength: 256 })) },
        { additionalProperties: false },
      ),
    },
    handler: async (req, reply) => {
      const body = req.body as { role: AdminRole; description?: string };
      void reply.code(201);
      return registry.adminTokens.create({ role: body.role, description: body.description ?? null, actor: actorOf(req) });
    },
  });

  app.get('/v1/admin-tokens', { schema: { tags: ['tokens'], summary: 'List admin tokens (never their secrets)' } }, async () => ({
    items: registry.adminTokens.list(),
  }));

  app.delete('/v1/admin-tokens/:id', { schema: { tags: ['tokens'], summary: 'Revoke an admin token', params: IdParams } }, async (req) =>
    registry.adminTokens.revoke((req.params as { id: string }).id, actorOf(req)),
  );
}
