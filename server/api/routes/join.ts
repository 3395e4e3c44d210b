// POST /v1/join: an agent presents a join token and a CSR, and gets its host certificate. This is
// the only write that needs no admin token; the join token is the credential.
import type { FastifyInstance } from 'fastify';
import { HmError } from '../../../shared/errors.js';
import { formatSpiffeId } from '../../../shared/identity.js';
import { JOIN_PATH, JoinRequest, type JoinResponse } from '../../../shared/protocol.js';
import { parseDuration } from '../../../shared/duration.js';
import type { MeshSpec } from '../../../shared/resources.js';
import { MESH_DEFAULTS } from '../../push/slices.js';
import type { ApiContext } from '../context.js';

export function joinRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { registry, ca } = ctx;

  app.post(JOIN_PATH, {
    config: { access: 'public' },
    schema: { tags: ['agents'], summary: 'Join the mesh with a join token and a CSR (used by agents)', body: JoinRequest },
    handler: async (req, reply): Promise<JoinResponse> => {
      const body = req.body as JoinRequest;
      // Check first without using the token up: signing costs CPU and must not be free for junk,
      // and a refused join (scope, name taken) must leave a single-use token usable.
      let token;
      try {
        token = registry.joinTokens.check(body.token);
      } catch (e) {
        ctx.metrics.joins.inc({ result: 'token_refused' });
        throw e;
      }
      if (token.services) {
        const outside = body.services.filter((s) => !token.services!.includes(s));
        if (outside.length > 0) {
          throw new HmError('HM_ERR_TOKEN_SCOPE', `this join token allows only ${token.services.join(', ')}; the host config also registers ${outside.join(', ')}`);
        }
      }
      if (registry.hosts.routing(body.host)) {
        throw new HmError('HM_ERR_HOST_EXISTS', `a host named "${body.host}" already joined; pick another name, or remove it first with \`hostmesh delete host ${body.host}\``);
      }
      const mesh = registry.resources.get('Mesh', 'default')?.spec as MeshSpec | undefined;
      const issued = await ca.signCsr(body.csr, {
        identity: formatSpiffeId({ trustDomain: registry.trustDomain, kind: 'host', name: body.host }),
        ttlMs: parseDuration(mesh?.certTTL ?? MESH_DEFAULTS.certTTL),
      });
      registry.db.transaction(() => {
        // Consume for real now; a racing join with the same single-use token loses here.
        registry.joinTokens.consume(body.token);
        if (registry.hosts.routing(body.host)) throw new HmError('HM_ERR_HOST_EXISTS', `a host named "${body.host}" already joined`);
        registry.hosts.insertJoined({
          name: body.host,
          tokenId: token.id,
          allowedServices: token.services,
          certSerial: issued.serial,
          certExpiresAt: issued.notAfter.toISOString(),
        });
      }).immediate();
      registry.notify();
      ctx.metrics.joins.inc({ result: 'joined' });
      ctx.metrics.certificatesIssued.inc({ kind: 'host' });
      ctx.log.info({ host: body.host, token: token.id, notAfter: issued.notAfter }, 'host joined');
      void reply.code(201);
      return {
        host: body.host,
        spiffeId: issued.spiffeId,
        certPem: issued.certPem,
        chainPem: issued.chainPem,
        notAfter: issued.notAfter.toISOString(),
        caBundle: [ca.rootPem],
        trustDomain: registry.trustDomain,
      };
    },
  });
}
