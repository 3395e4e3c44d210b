// Bearer-token auth for the admin API. Each route says what it needs in `config.access`:
// 'public' (no token), 'read' (viewer or admin), 'write' (admin). The TLS client certificate an
// agent may present on this port is deliberately ignored here: it never counts as an admin credential.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AdminRole } from '../../shared/api-types.js';
import { HmError } from '../../shared/errors.js';
import type { Registry } from '../registry/registry.js';

export type Access = 'public' | 'read' | 'write';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifyRequest {
    principal: { id: string; role: AdminRole } | null;
  }
}

export function actorOf(req: FastifyRequest): string {
  return req.principal ? `token:${req.principal.id}` : 'anonymous';
}

export function makeAuthHook(registry: Registry) {
  return async function authenticate(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const access: Access = req.routeOptions.config.access ?? (req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'write');
    req.principal = null;
    if (access === 'public') return;
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m) {
      void reply.header('www-authenticate', 'Bearer realm="hostmesh"');
      throw new HmError('HM_ERR_UNAUTHENTICATED', 'missing bearer token: send "Authorization: Bearer <admin token>" (see `hostmesh admin-token create`)');
    }
    const principal = registry.adminTokens.authenticate(m[1]!);
    if (!principal) {
      void reply.header('www-authenticate', 'Bearer realm="hostmesh", error="invalid_token"');
      throw new HmError('HM_ERR_UNAUTHENTICATED', 'the bearer token is not valid (unknown or revoked)');
    }
    if (access === 'write' && principal.role !== 'admin') {
      throw new HmError('HM_ERR_FORBIDDEN', `this token has role ${principal.role}, which may only read; use an admin token`);
    }
    req.principal = principal;
  };
}
