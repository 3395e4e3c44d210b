// SPIFFE identities: spiffe://<trust-domain>/host/<name> and spiffe://<trust-domain>/service/<name>.

/** A DNS label (RFC 1123): what every resource, host and service name must be. */
export const NAME_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';
const NAME_RE = new RegExp(NAME_PATTERN);
/** A trust domain: one or more DNS labels joined by dots. */
export const TRUST_DOMAIN_PATTERN = '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$';
const TD_RE = new RegExp(TRUST_DOMAIN_PATTERN);

export type IdentityKind = 'host' | 'service';

export interface SpiffeId {
  trustDomain: string;
  kind: IdentityKind;
  name: string;
}

export function isName(s: string): boolean {
  return NAME_RE.test(s);
}

export function isTrustDomain(s: string): boolean {
  return s.length <= 253 && TD_RE.test(s);
}

export function formatSpiffeId(id: SpiffeId): string {
  if (!isTrustDomain(id.trustDomain)) throw new RangeError(`invalid trust domain "${id.trustDomain}"`);
  if (!isName(id.name)) throw new RangeError(`invalid ${id.kind} name "${id.name}" (must be a DNS label)`);
  return `spiffe://${id.trustDomain}/${id.kind}/${id.name}`;
}

/** Parse strictly: exactly `spiffe://td/(host|service)/name`, nothing more. Returns null otherwise. */
export function parseSpiffeId(uri: string): SpiffeId | null {
  const m = /^spiffe:\/\/([^/]+)\/(host|service)\/([^/]+)$/.exec(uri);
  if (!m) return null;
  const [, trustDomain, kind, name] = m as unknown as [string, string, IdentityKind, string];
  if (!isTrustDomain(trustDomain) || !isName(name)) return null;
  return { trustDomain, kind, name };
}

/** The TLS server name (SNI) agents use for a service: `<service>.<trust-domain>`. */
export function serviceServerName(service: string, trustDomain: string): string {
  return `${service}.${trustDomain}`;
}
