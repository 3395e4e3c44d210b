// Builds the HTTPS fastify app: one port for the admin API, health, the OpenAPI document and
// (later) the agents' WebSocket. Separate from main.ts so tests can build it without listening.
import fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { HmError } from '../../shared/errors.js';
import { makeAuthHook } from './auth.js';
import type { ApiContext } from './context.js';
import { makeErrorHandler } from './errors.js';
import { meshStateRoutes } from './routes/mesh-state.js';
import { resourceRoutes } from './routes/resources.js';
import { tokenRoutes } from './routes/tokens.js';
import { joinRoutes } from './routes/join.js';
import { installRoutes } from './routes/install.js';
import { statsRoutes } from './routes/stats.js';
import { validatorCompiler } from './validator.js';

export const BODY_LIMIT = 1024 * 1024;

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  caPem: string;
}

export async function buildApp(ctx: ApiContext, tls: TlsMaterial | null): Promise<FastifyInstance> {
  const app = fastify({
    // Our own pino logger per request would log every call; the API logs errors and writes only.
    logger: false,
    bodyLimit: BODY_LIMIT,
    // Bodies over the limit are refused before they are read, and slow clients can't pin sockets.
    requestTimeout: 30_000,
    connectionTimeout: 30_000,
    return503OnClosing: true,
    ...(tls
      ? {
          https: {
            cert: tls.certPem,
            key: tls.keyPem,
            ca: tls.caPem,
            minVersion: 'TLSv1.2' as const,
            // Agents present their host certificate on this port (for their WebSocket); people do not.
            // So the certificate is asked for but not required here, and the admin API never looks at it.
            requestCert: true,
            rejectUnauthorized: false,
          },
        }
      : {}),
  }) as unknown as FastifyInstance;

  // JSON only: a text/plain body would otherwise reach handlers as a string; refuse it with 415.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setErrorHandler(makeErrorHandler(ctx.log));
  app.setNotFoundHandler((req, reply) => {
    const e = new HmError('HM_ERR_ROUTE_NOT_FOUND', `no such API path: ${req.method} ${req.url.split('?')[0]}`);
    void reply.code(404).send(e.toJSON());
  });
  app.decorateRequest('principal', null);
  app.addHook('onRequest', makeAuthHook(ctx.registry));

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'hostmesh admin API', version: ctx.version, description: 'Bearer-token authenticated; errors are {error:{code,message}}' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  resourceRoutes(app, ctx);
  tokenRoutes(app, ctx);
  meshStateRoutes(app, ctx);
  joinRoutes(app, ctx);
  statsRoutes(app, ctx);
  installRoutes(app, ctx, tls?.certPem ?? null);
  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => app.swagger());

  app.get('/metrics', { config: { access: ctx.metricsPublic ? 'public' : 'read' }, schema: { tags: ['server'], summary: 'Prometheus metrics of the server' } }, async (_req, reply) => {
    ctx.metrics.revision.set(ctx.registry.revision());
    ctx.metrics.agentsConnected.set(ctx.hub?.connectedCount() ?? 0);
    void reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.addHook('onResponse', async (req, reply) => {
    // The route pattern, not the URL: names in paths would make the label set unbounded.
    ctx.metrics.apiRequests.inc({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: reply.statusCode });
    if (req.method !== 'GET' && req.method !== 'HEAD' && reply.statusCode < 400) {
      ctx.log.info({ method: req.method, url: req.url, status: reply.statusCode, actor: req.principal?.id }, 'admin write');
    }
  });
  return app;
}
