// The agent's host config (/etc/hostmesh/agent.yaml): schema, defaults, and the frozen runtime form.
import os from 'node:os';
import Type, { type Static } from 'typebox';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import { HmError, type Violation } from './errors.js';
import { NAME_PATTERN } from './identity.js';
import { compile } from './validation.js';

const Duration = Type.String({ pattern: DURATION_PATTERN });
const HostPort = Type.String({ pattern: '^(\\[[0-9a-fA-F:.]+\\]|[^:\\s\\[\\]]+):[0-9]{1,5}$', description: 'HOST:PORT' });
const Labels = Type.Record(Type.String({ pattern: '^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$' }), Type.String({ maxLength: 63 }), { maxProperties: 32 });

export const HealthCheckSchema = Type.Object(
  {
    http: Type.Optional(Type.String({ pattern: '^/', description: 'path to GET on the local instance' })),
    expectStatus: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, description: 'default: any 2xx' })),
    tcp: Type.Optional(Type.Boolean({ description: 'only check that the port accepts connections' })),
    interval: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    rise: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'successes before healthy (default 1)' })),
    fall: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'failures before unhealthy (default 3)' })),
  },
  { additionalProperties: false },
);

export const HostServiceSchema = Type.Object(
  {
    name: Type.String({ pattern: NAME_PATTERN }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** Where the local instance listens; default 127.0.0.1. */
    host: Type.Optional(Type.String({ minLength: 1 })),
    protocol: Type.Optional(Type.Union([Type.Literal('http'), Type.Literal('tcp')])),
    labels: Type.Optional(Labels),
    check: Type.Optional(HealthCheckSchema),
  },
  { additionalProperties: false },
);

export const UpstreamSchema = Type.Object(
  {
    service: Type.String({ pattern: NAME_PATTERN }),
    localPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** Local address to listen on; default 127.0.0.1. */
    bind: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

/** Data-plane observability, all optional (see README "Metrics, access logs and tracing"). */
export const MetricsConfigSchema = Type.Object(
  {
    traffic: Type.Optional(Type.Boolean({ description: 'per-request and per-connection metrics (requests, latency, connections, bytes) on /metrics; false leaves them out (hostmesh stat still works); default true' })),
    summaries: Type.Optional(Type.Boolean({ description: 'send golden-metric summaries to the server (hostmesh stat); false sends none, and with traffic: false too the agent keeps no per-request figures at all; default true' })),
    summaryInterval: Type.Optional(Type.String({ pattern: DURATION_PATTERN, description: 'how often golden-metric summaries go to the server (hostmesh stat), 1s to 60s; default 10s' })),
  },
  { additionalProperties: false },
);

export const AccessLogConfigSchema = Type.Object(
  {
    path: Type.Optional(Type.String({ minLength: 1, description: 'file the access log lines are appended to; default: the agent\'s stdout' })),
  },
  { additionalProperties: false },
);

export const TracingConfigSchema = Type.Object(
  {
    otlpEndpoint: Type.String({ pattern: '^https?://', description: 'OTLP/HTTP JSON traces URL, e.g. http://collector:4318/v1/traces' }),
    sampleRatio: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'share of new traces recorded; default 1' })),
    maxQueue: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'spans held for export before new ones are dropped; default 2048' })),
  },
  { additionalProperties: false },
);

export const HostConfigSchema = Type.Object(
  {
    server: Type.String({ pattern: '^https://', description: 'https://HOST:PORT of the hostmesh server' }),
    caFingerprint: Type.String({ pattern: '^sha256:[0-9a-f]{64}$', description: 'sha256:<64 hex> of the mesh root' }),
    token: Type.Optional(Type.String({ minLength: 1 })),
    name: Type.Optional(Type.String({ pattern: NAME_PATTERN })),
    address: Type.Optional(Type.String({ minLength: 1 })),
    stateDir: Type.Optional(Type.String({ minLength: 1 })),
    inbound: Type.Optional(HostPort),
    admin: Type.Optional(HostPort),
    services: Type.Optional(Type.Array(HostServiceSchema, { maxItems: 256 })),
    upstreams: Type.Optional(Type.Array(UpstreamSchema, { maxItems: 256 })),
    logLevel: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)))),
    drainTimeout: Type.Optional(Type.String({ pattern: DURATION_PATTERN, description: 'on SIGTERM, how long requests in flight may take to finish before the agent cuts them; default 20s (systemd stops it after 30s)' })),
    multiplex: Type.Optional(Type.Boolean({ description: 'carry connections to and from other agents as streams of one mTLS connection per service and agent (ALPN hostmesh-mux/1); false: one mTLS connection per app connection, both ways; default true' })),
    metrics: Type.Optional(MetricsConfigSchema),
    accessLog: Type.Optional(AccessLogConfigSchema),
    tracing: Type.Optional(TracingConfigSchema),
  },
  { additionalProperties: false },
);

export type HostConfigInput = Static<typeof HostConfigSchema>;
export type HostService = Static<typeof HostServiceSchema>;
export type Upstream = Static<typeof UpstreamSchema>;
export type HealthCheck = Static<typeof HealthCheckSchema>;

export const HOST_CONFIG_DEFAULTS = {
  stateDir: '/var/lib/hostmesh',
  inboundPort: 15443,
  admin: '127.0.0.1:15090',
  checkInterval: '10s',
  checkTimeout: '2s',
  rise: 1,
  fall: 3,
} as const;

export interface ResolvedCheck {
  kind: 'http' | 'tcp';
  path: string | null;
  expectStatus: number | null;
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

export interface ResolvedService {
  name: string;
  port: number;
  host: string;
  protocol: 'http' | 'tcp' | null;
  labels: Record<string, string>;
  check: ResolvedCheck | null;
}

/** The frozen runtime config: every default filled in, durations in milliseconds. */
export interface HostConfig {
  readonly server: string;
  readonly caFingerprint: string;
  readonly token: string | null;
  readonly name: string;
  readonly address: string;
  readonly stateDir: string;
  readonly inbound: { host: string; port: number };
  readonly admin: { host: string; port: number };
  readonly services: readonly ResolvedService[];
  readonly upstreams: readonly Required<Upstream>[];
  readonly logLevel: string;
  /** Graceful stop budget (ms); see drainTimeout. Optional so hand-built configs (tests) need not name it. */
  readonly drainTimeoutMs?: number;
  /** Multiplexed connections between agents (default true). */
  readonly multiplex?: boolean;
  // Optional so a HostConfig built by hand (tests) need not name them; resolveHostConfig fills all three.
  readonly metrics?: { readonly traffic: boolean; readonly summaries?: boolean; readonly summaryIntervalMs?: number };
  /** Where access log lines go when a Mesh or Service turns them on (null: stdout). */
  readonly accessLog?: { readonly path: string | null };
  /** Span export; null: traceparent is passed through and only started when absent. */
  readonly tracing?: { readonly otlpEndpoint: string; readonly sampleRatio: number; readonly maxQueue: number } | null;
}

const validator = compile(HostConfigSchema);

export function splitHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) throw new RangeError(`"${text}" is not HOST:PORT`);
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}

/** The first non-internal IPv4 address of this machine, as the default `address`. */
export function primaryIPv4(): string {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

function hostnameAsName(): string {
  return os.hostname().toLowerCase().split('.')[0]!.replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63) || 'host';
}

/**
 * Validate raw config (already parsed from YAML and merged with flags) and resolve it. Throws
 * HM_ERR_CONFIG whose message names the first bad field; nothing is started half-configured.
 */
export function resolveHostConfig(raw: unknown, source = 'host config'): HostConfig {
  const violations = validator.violations(raw);
  if (violations.length > 0) throw configError(source, violations);
  const c = raw as HostConfigInput;
  const extra: Violation[] = [];
  const ms = (field: string, text: string | undefined, fallback: string): number => {
    const v = parseDuration(text ?? fallback);
    if (v < 100 || v > 3_600_000) extra.push({ field, message: 'must be between 100ms and 1h' });
    return v;
  };
  const seen = new Set<string>();
  const services: ResolvedService[] = (c.services ?? []).map((s, i) => {
    if (seen.has(s.name)) extra.push({ field: `services[${i}].name`, message: `service "${s.name}" is listed twice` });
    seen.add(s.name);
    if (s.check && s.check.http && s.check.tcp) extra.push({ field: `services[${i}].check`, message: 'give http or tcp, not both' });
    const check: ResolvedCheck | null = s.check
      ? {
          kind: s.check.http ? 'http' : 'tcp',
          path: s.check.http ?? null,
          expectStatus: s.check.expectStatus ?? null,
          intervalMs: ms(`services[${i}].check.interval`, s.check.interval, HOST_CONFIG_DEFAULTS.checkInterval),
          timeoutMs: ms(`services[${i}].check.timeout`, s.check.timeout, HOST_CONFIG_DEFAULTS.checkTimeout),
          rise: s.check.rise ?? HOST_CONFIG_DEFAULTS.rise,
          fall: s.check.fall ?? HOST_CONFIG_DEFAULTS.fall,
        }
      : null;
    if (check && check.timeoutMs > check.intervalMs) extra.push({ field: `services[${i}].check.timeout`, message: 'must not exceed the interval' });
    return { name: s.name, port: s.port, host: s.host ?? '127.0.0.1', protocol: s.protocol ?? null, labels: s.labels ?? {}, check };
  });
  const ports = new Map<number, string>();
  const upstreams = (c.upstreams ?? []).map((u, i) => {
    const prior = ports.get(u.localPort);
    if (prior) extra.push({ field: `upstreams[${i}].localPort`, message: `port ${u.localPort} is already used by upstream "${prior}"` });
    ports.set(u.localPort, u.service);
    return { service: u.service, localPort: u.localPort, bind: u.bind ?? '127.0.0.1' };
  });
  if (c.metrics?.summaryInterval !== undefined) {
    const ms = parseDuration(c.metrics.summaryInterval);
    if (ms < 1000 || ms > 60_000) extra.push({ field: 'metrics.summaryInterval', message: 'must be between 1s and 60s' });
  }
  if (c.tracing && !URL.canParse(c.tracing.otlpEndpoint)) extra.push({ field: 'tracing.otlpEndpoint', message: 'must be an http(s) URL' });
  if (extra.length > 0) throw configError(source, extra);

  const address = c.address ?? primaryIPv4();
  const inbound = c.inbound ? splitHostPort(c.inbound) : { host: address, port: HOST_CONFIG_DEFAULTS.inboundPort };
  return Object.freeze({
    server: c.server.replace(/\/+$/, ''),
    caFingerprint: c.caFingerprint,
    token: c.token ?? null,
    name: c.name ?? hostnameAsName(),
    address,
    stateDir: c.stateDir ?? HOST_CONFIG_DEFAULTS.stateDir,
    inbound,
    admin: splitHostPort(c.admin ?? HOST_CONFIG_DEFAULTS.admin),
    services: Object.freeze(services),
    upstreams: Object.freeze(upstreams),
    logLevel: c.logLevel ?? 'info',
    drainTimeoutMs: c.drainTimeout === undefined ? 20_000 : parseDuration(c.drainTimeout),
    multiplex: c.multiplex ?? true,
    metrics: Object.freeze({ traffic: c.metrics?.traffic ?? true, summaries: c.metrics?.summaries ?? true, summaryIntervalMs: c.metrics?.summaryInterval ? parseDuration(c.metrics.summaryInterval) : 10_000 }),
    accessLog: Object.freeze({ path: c.accessLog?.path ?? null }),
    tracing: c.tracing
      ? Object.freeze({ otlpEndpoint: c.tracing.otlpEndpoint, sampleRatio: c.tracing.sampleRatio ?? 1, maxQueue: c.tracing.maxQueue ?? 2048 })
      : null,
  });
}

function configError(source: string, violations: Violation[]): HmError {
  const first = violations[0]!;
  return new HmError('HM_ERR_CONFIG', `${source}: ${first.field || '(root)'}: ${first.message}`, { violations });
}
