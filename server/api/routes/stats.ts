// Golden metrics without Prometheus: what agents summarized over the last minutes, per service and
// per edge (GET /v1/stats), and the same as a graph of services and the calls between them
// (GET /v1/topology) for a UI.
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { parseDuration } from '../../../shared/duration.js';
import { HmError } from '../../../shared/errors.js';
import { NAME_PATTERN } from '../../../shared/identity.js';
import type { ServiceSpec } from '../../../shared/resources.js';
import type { StatsView } from '../../../shared/golden.js';
import { MAX_WINDOW_SECONDS, SLOT_SECONDS } from '../../stats/window.js';
import type { ApiContext } from '../context.js';

const WindowQuery = Type.Optional(Type.String({ maxLength: 16, description: `e.g. 30s, 1m, 10m; rounded up to ${SLOT_SECONDS} s, at most ${MAX_WINDOW_SECONDS / 60}m (default 1m)` }));

function windowSeconds(text: string | undefined): number {
  if (text === undefined) return 60;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (e) {
    throw new HmError('HM_ERR_VALIDATION', `window: ${(e as Error).message}`, { violations: [{ field: 'window', message: (e as Error).message }] });
  }
  if (ms < SLOT_SECONDS * 1000 || ms > MAX_WINDOW_SECONDS * 1000) {
    const message = `must be between ${SLOT_SECONDS}s and ${MAX_WINDOW_SECONDS / 60}m: the server keeps ${MAX_WINDOW_SECONDS / 60} minutes in ${SLOT_SECONDS} s steps`;
    throw new HmError('HM_ERR_VALIDATION', `window ${text} ${message}`, { violations: [{ field: 'window', message }] });
  }
  return ms / 1000;
}

export function statsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/v1/stats', {
    schema: {
      tags: ['observability'],
      summary: 'Success rate, requests per second and latency quantiles per service and per edge, from agents’ summaries',
      querystring: Type.Object({ window: WindowQuery, service: Type.Optional(Type.String({ pattern: NAME_PATTERN })) }, { additionalProperties: false }),
    },
    handler: async (req): Promise<StatsView> => {
      const q = req.query as { window?: string; service?: string };
      const view = ctx.stats.view(windowSeconds(q.window));
      if (q.service === undefined) return view;
      if (!ctx.registry.resources.get('Service', q.service) && !view.services.some((s) => s.service === q.service)) {
        throw new HmError('HM_ERR_NOT_FOUND', `service "${q.service}" is not declared and has no traffic in the window`);
      }
      return {
        windowSeconds: view.windowSeconds,
        services: view.services.filter((s) => s.service === q.service),
        edges: view.edges.filter((e) => e.destination === q.service || e.source === q.service),
      };
    },
  });

  app.get('/v1/topology', {
    schema: {
      tags: ['observability'],
      summary: 'Services (declared, with their instances) and the edges between them, with golden metrics',
      querystring: Type.Object({ window: WindowQuery }, { additionalProperties: false }),
    },
    handler: async (req) => {
      const view = ctx.stats.view(windowSeconds((req.query as { window?: string }).window));
      const golden = new Map(view.services.map((s) => [s.service, s]));
      const instances = ctx.registry.hosts.listInstances();
      const names = new Set([...ctx.registry.resources.list('Service').map((r) => r.name), ...golden.keys()]);
      const services = [...names].sort().map((name) => {
        const spec = ctx.registry.resources.get('Service', name)?.spec as ServiceSpec | undefined;
        const mine = instances.filter((i) => i.service === name);
        const { service: _omit, ...stats } = golden.get(name) ?? { service: name, measuredAt: null, requests: 0, failures: 0, successRate: null, requestsPerSecond: 0, p50Ms: null, p95Ms: null, p99Ms: null };
        return {
          name,
          declared: spec !== undefined,
          protocol: spec?.protocol ?? null,
          instances: { total: mine.length, healthy: mine.filter((i) => i.healthy).length },
          stats,
        };
      });
      return { windowSeconds: view.windowSeconds, services, edges: view.edges };
    },
  });
}
