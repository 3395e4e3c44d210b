import { isIP } from 'node:net';
import { HmError } from '../../shared/errors.js';
import { formatSpiffeId, isTrustDomain, parseSpiffeId, type SpiffeId } from '../../shared/identity.js';

/** The canonical URI and parsed form of a requested identity, refused unless it is ours and well-formed. */
export function resolveIdentity(identity: string | SpiffeId, trustDomain: string): { uri: string; id: SpiffeId } {
  let id: SpiffeId | null;
  if (typeof identity === 'string') {
    id = parseSpiffeId(identity);
    if (!id) {
      throw new HmError(
        'HM_ERR_IDENTITY',
        `malformed identity "${identity}": expected spiffe://${trustDomain}/host/<name> or spiffe://${trustDomain}/service/<name>`,
      );
    }
  } else {
    id = identity;
  }
  let uri: string;
  try {
    // Objects come from code, not the wire, but they still go through the same strict rules.
    if (id.kind !== 'host' && id.kind !== 'service') throw new RangeError(`unknown identity kind "${String(id.kind)}"`);
    uri = formatSpiffeId(id);
  } catch (err) {
    throw new HmError('HM_ERR_IDENTITY', `malformed identity: ${(err as Error).message}`);
  }
  if (id.trustDomain !== trustDomain) {
    throw new HmError('HM_ERR_IDENTITY', `identity ${uri} is not in this CA's trust domain "${trustDomain}"`);
  }
  return { uri, id: { trustDomain: id.trustDomain, kind: id.kind, name: id.name } };
}

// A SAN list is copied into every cert we issue; bounding it keeps a caller from bloating leaves.
const MAX_SANS = 32;

/**
 * Lower-cased, de-duplicated DNS names. Wildcards are refused: a mesh identity names one service,
 * and `*.td` would let one leaf answer for all of them.
 */
export function checkDnsNames(names: readonly string[] | undefined): string[] {
  const out = new Set<string>();
  for (const raw of names ?? []) {
    const n = String(raw).toLowerCase();
    // A DNS name has the same grammar as a trust domain: dot-separated RFC 1123 labels.
    if (!isTrustDomain(n)) throw new HmError('HM_ERR_VALIDATION', `invalid DNS name "${raw}" for a certificate`);
    out.add(n);
  }
  if (out.size > MAX_SANS) throw new HmError('HM_ERR_VALIDATION', `too many DNS names (${out.size} > ${MAX_SANS})`);
  return [...out];
}

export function checkIpAddresses(ips: readonly string[] | undefined): string[] {
  const out = new Set<string>();
  for (const raw of ips ?? []) {
    const ip = canonicalIp(String(raw));
    if (!ip) throw new HmError('HM_ERR_VALIDATION', `invalid IP address "${raw}" for a certificate`);
    out.add(ip);
  }
  if (out.size > MAX_SANS) throw new HmError('HM_ERR_VALIDATION', `too many IP addresses (${out.size} > ${MAX_SANS})`);
  return [...out];
}

/**
 * One spelling per address, so `::1` asked for and `0:0:0:0:0:0:0:1` read back from a cert compare
 * equal. The URL parser already implements IPv6 compression. Returns null when not an IP.
 */
export function canonicalIp(s: string): string | null {
  const kind = isIP(s);
  if (kind === 4) return s;
  if (kind === 6) {
    try {
      return new URL(`http://[${s}]/`).hostname.slice(1, -1);
    } catch {
      return null;
    }
  }
  return null;
}
