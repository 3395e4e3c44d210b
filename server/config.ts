// The server's runtime config: flags merged over defaults, validated, then frozen.
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { HmError } from '../shared/errors.js';
import { isTrustDomain } from '../shared/identity.js';

export interface ServerOptions {
  dataDir?: string;
  listen?: string;
  trustDomain?: string;
  /** Address agents and the CLI should use, when it differs from the listen address (e.g. 0.0.0.0). */
  advertise?: string;
  /** Serve /metrics without a token (for a Prometheus that cannot send one). */
  metricsPublic?: boolean;
}

export interface ServerConfig {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  /** undefined: keep the data dir's (or the default for a new one). */
  readonly trustDomain: string | undefined;
  readonly publicHost: string;
  readonly metricsPublic: boolean;
}

export const SERVER_DEFAULTS = { dataDir: './data', listen: '127.0.0.1:7443' } as const;

export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 0 || port > 65535) {
    throw new HmError('HM_ERR_CONFIG', `${what}: "${text}" is not HOST:PORT (e.g. 127.0.0.1:7443 or [::1]:7443)`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

export function resolveServerConfig(opts: ServerOptions): ServerConfig {
  const { host, port } = parseHostPort(opts.listen ?? SERVER_DEFAULTS.listen, '--listen');
  if (opts.trustDomain !== undefined && !isTrustDomain(opts.trustDomain)) {
    throw new HmError('HM_ERR_CONFIG', `--trust-domain: "${opts.trustDomain}" is not a valid trust domain (lower-case DNS name, e.g. hostmesh.local)`);
  }
  const unspecified = host === '0.0.0.0' || host === '::';
  const publicHost = opts.advertise ?? (unspecified ? os.hostname() : host);
  return Object.freeze({
    dataDir: path.resolve(opts.dataDir ?? SERVER_DEFAULTS.dataDir),
    host,
    port,
    trustDomain: opts.trustDomain,
    publicHost,
    metricsPublic: opts.metricsPublic === true,
  });
}

export function urlFor(host: string, port: number): string {
  return `https://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}
