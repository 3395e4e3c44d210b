// Who is on the other end of a verified mTLS connection. OpenSSL has already checked the chain to
// the mesh root and the validity period; this adds what OpenSSL does not know about: exactly one
// SPIFFE URI, in our trust domain, and the usage the connection needs.
import type { X509Certificate } from 'node:crypto';
import { parseSpiffeId, type SpiffeId } from '../../shared/identity.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

export type IdentityRefusal = 'NO_PEER_CERT' | 'NO_SPIFFE_ID' | 'MULTIPLE_URIS' | 'BAD_SPIFFE_ID' | 'FOREIGN_TRUST_DOMAIN' | 'MISSING_EKU' | 'EXPIRED';

export function peerIdentity(cert: X509Certificate | undefined, trustDomain: string, usage: 'client' | 'server', now = Date.now()): SpiffeId | IdentityRefusal {
  if (!cert) return 'NO_PEER_CERT';
  const uris: string[] = [];
  for (const part of (cert.subjectAltName ?? '').split(', ')) if (part.startsWith('URI:')) uris.push(part.slice(4));
  if (uris.length === 0) return 'NO_SPIFFE_ID';
  if (uris.length > 1) return 'MULTIPLE_URIS';
  const id = parseSpiffeId(uris[0]!);
  if (!id) return 'BAD_SPIFFE_ID';
  if (id.trustDomain !== trustDomain) return 'FOREIGN_TRUST_DOMAIN';
  // `keyUsage` is Node's name for the extended key usage OIDs; undefined means no EKU extension,
  // which RFC 5280 reads as "any", but our CA always sets it, so its absence is refused.
  const eku = cert.keyUsage;
  if (!eku || !eku.includes(usage === 'client' ? CLIENT_AUTH : SERVER_AUTH)) return 'MISSING_EKU';
  if (Date.parse(cert.validTo) <= now || Date.parse(cert.validFrom) > now + 60_000) return 'EXPIRED';
  return id;
}

/** The name policies match on: a service name, or `host/<name>` for a host identity (matched only by "*"). */
export function sourceName(id: SpiffeId): string {
  return id.kind === 'service' ? id.name : `host/${id.name}`;
}
