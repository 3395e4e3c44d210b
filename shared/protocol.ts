// The server ↔ agent protocol: one WebSocket per agent (TLS, host certificate), JSON messages with
// a `type`. Declared once here, with runtime validators; neither side invents shapes of its own.
// PROTOCOL_VERSION is sent in `hello`; the server accepts every version in SUPPORTED_PROTOCOLS so
// old and new agents can coexist during an upgrade.
import Type, { type Static } from 'typebox';
import { LATENCY_BUCKETS, SOURCE_PATTERN } from './golden.js';
import { NAME_PATTERN } from './identity.js';
import { AccessPolicySpec, MeshSpec, RouteSpec, ServiceSpec, TrafficPolicySpec } from './resources.js';
import { compile } from './validation.js';

export const PROTOCOL_VERSION = 2;
export const SUPPORTED_PROTOCOLS: readonly number[] = [1, 2];
/** From this protocol version on, agents take `delta` messages; older ones only get snapshots. */
export const DELTA_PROTOCOL = 2;
export const AGENT_WS_PATH = '/v1/agent/connect';
export const JOIN_PATH = '/v1/join';
/** Largest frame either side accepts; a snapshot for a big mesh is well under this. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

const Name = Type.String({ pattern: NAME_PATTERN });
const Labels = Type.Record(Type.String(), Type.String());
const Revision = Type.Integer({ minimum: 0 });

// ---- the slice of config an agent receives ----------------------------------------------------

export const Endpoint = Type.Object(
  {
    host: Name,
    /** The remote agent's inbound listener: what this agent dials (with SNI naming the service). */
    address: Type.String(),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    labels: Labels,
    healthy: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const LocalServiceSlice = Type.Object(
  {
    spec: Type.Union([ServiceSpec, Type.Null()], { description: 'null when the service is not declared on the server' }),
    accessPolicy: Type.Union([AccessPolicySpec, Type.Null()]),
  },
  { additionalProperties: false },
);

export const UpstreamSlice = Type.Object(
  {
    spec: ServiceSpec,
    route: Type.Union([RouteSpec, Type.Null()]),
    trafficPolicy: Type.Union([TrafficPolicySpec, Type.Null()]),
    endpoints: Type.Array(Endpoint),
  },
  { additionalProperties: false },
);

export const Slice = Type.Object(
  {
    mesh: Type.Object(
      {
        trustDomain: Type.String(),
        mtls: Type.Union([Type.Literal('strict'), Type.Literal('permissive')]),
        defaultAccess: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
        certTTL: Type.String(),
        accessLog: Type.Boolean(),
      },
      { additionalProperties: false },
    ),
    caBundle: Type.Array(Type.String(), { minItems: 1 }),
    /** Services this host registers, with what the inbound side needs. */
    services: Type.Record(Type.String(), LocalServiceSlice),
    /** Declared services this host calls (its upstreams), with what the outbound side needs. */
    upstreams: Type.Record(Type.String(), UpstreamSlice),
  },
  { additionalProperties: false },
);
export type Slice = Static<typeof Slice>;

/**
 * What changed in one upstream. For an upstream the base does not have, spec, route and
 * trafficPolicy are all present. Endpoints are keyed by host: `endpoints` adds or replaces, `removed`
 * drops; the result is ordered by host, as the server orders it.
 */
export const UpstreamPatch = Type.Object(
  {
    spec: Type.Optional(ServiceSpec),
    route: Type.Optional(Type.Union([RouteSpec, Type.Null()])),
    trafficPolicy: Type.Optional(Type.Union([TrafficPolicySpec, Type.Null()])),
    endpoints: Type.Optional(Type.Array(Endpoint)),
    removed: Type.Optional(Type.Array(Name)),
  },
  { additionalProperties: false },
);

/** A slice as changes to the one the agent applied: only what differs; null removes an entry. */
export const SlicePatch = Type.Object(
  {
    mesh: Type.Optional(Slice.properties.mesh),
    caBundle: Type.Optional(Slice.properties.caBundle),
    // Keys are service names (never e.g. "__proto__"): a patch is applied by assignment.
    services: Type.Optional(Type.Record(Name, Type.Union([LocalServiceSlice, Type.Null()]))),
    upstreams: Type.Optional(Type.Record(Name, Type.Union([UpstreamPatch, Type.Null()]))),
  },
  { additionalProperties: false },
);
export type UpstreamPatch = Static<typeof UpstreamPatch>;
export type SlicePatch = Static<typeof SlicePatch>;
export type Endpoint = Static<typeof Endpoint>;
export type UpstreamSlice = Static<typeof UpstreamSlice>;
export type LocalServiceSlice = Static<typeof LocalServiceSlice>;
export type MeshSlice = Slice['mesh'];
export { MeshSpec };

// ---- agent → server -------------------------------------------------------------------------

const HelloService = Type.Object(
  {
    name: Name,
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    labels: Labels,
    healthy: Type.Boolean(),
  },
  { additionalProperties: false },
);

export const HelloMsg = Type.Object(
  {
    type: Type.Literal('hello'),
    protocol: Type.Integer({ minimum: 1 }),
    host: Name,
    agentVersion: Type.String({ maxLength: 64 }),
    appliedRevision: Type.Union([Revision, Type.Null()]),
    appliedHash: Type.Union([Type.String(), Type.Null()]),
    inbound: Type.Object({ address: Type.String({ minLength: 1, maxLength: 255 }), port: Type.Integer({ minimum: 1, maximum: 65535 }) }, { additionalProperties: false }),
    services: Type.Array(HelloService, { maxItems: 256 }),
    upstreams: Type.Array(Name, { maxItems: 256 }),
    facts: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);

export const AckMsg = Type.Object({ type: Type.Literal('ack'), revision: Revision, hash: Type.String() }, { additionalProperties: false });
export const NackMsg = Type.Object(
  { type: Type.Literal('nack'), revision: Revision, hash: Type.String(), error: Type.String({ maxLength: 2000 }) },
  { additionalProperties: false },
);
export const HealthMsg = Type.Object(
  {
    type: Type.Literal('health'),
    changes: Type.Array(Type.Object({ service: Name, healthy: Type.Boolean() }, { additionalProperties: false }), { minItems: 1, maxItems: 256 }),
  },
  { additionalProperties: false },
);
export const CsrMsg = Type.Object(
  {
    type: Type.Literal('csr'),
    /** Echoed in the answer so the agent can match it. */
    id: Type.String({ maxLength: 64 }),
    kind: Type.Union([Type.Literal('host'), Type.Literal('service')]),
    name: Name,
    csr: Type.String({ maxLength: 16384 }),
  },
  { additionalProperties: false },
);
const EdgeSummaryT = Type.Object(
  {
    direction: Type.Union([Type.Literal('inbound'), Type.Literal('outbound')]),
    source: Type.String({ pattern: SOURCE_PATTERN }),
    destination: Name,
    requests: Type.Integer({ minimum: 0 }),
    failures: Type.Integer({ minimum: 0 }),
    /** Counts per bucket of shared/golden.ts LATENCY_BOUNDS_SECONDS, plus the overflow bucket. */
    latency: Type.Array(Type.Integer({ minimum: 0 }), { minItems: LATENCY_BUCKETS, maxItems: LATENCY_BUCKETS }),
  },
  { additionalProperties: false },
);
/** Golden metrics of the last period, per edge this host saw (inbound to its services, outbound to its upstreams). */
export const StatsMsg = Type.Object(
  {
    type: Type.Literal('stats'),
    at: Type.String({ maxLength: 64 }),
    intervalSeconds: Type.Number({ exclusiveMinimum: 0, maximum: 3600 }),
    edges: Type.Array(EdgeSummaryT, { maxItems: 10000 }),
  },
  { additionalProperties: false },
);

/** The agent's answer to a frame it could not take. Never answered in turn, so errors cannot ping-pong. */
export const AgentErrorMsg = Type.Object(
  { type: Type.Literal('error'), code: Type.String({ maxLength: 64 }), message: Type.String({ maxLength: 2000 }), ref: Type.Optional(Type.String({ maxLength: 64 })) },
  { additionalProperties: false },
);

export const AgentMessage = Type.Union([HelloMsg, AckMsg, NackMsg, HealthMsg, CsrMsg, StatsMsg, AgentErrorMsg]);
export type HelloMsg = Static<typeof HelloMsg>;
export type AckMsg = Static<typeof AckMsg>;
export type NackMsg = Static<typeof NackMsg>;
export type HealthMsg = Static<typeof HealthMsg>;
export type CsrMsg = Static<typeof CsrMsg>;
export type StatsMsg = Static<typeof StatsMsg>;
export type AgentErrorMsg = Static<typeof AgentErrorMsg>;
export type AgentMessage = Static<typeof AgentMessage>;

// ---- server → agent -------------------------------------------------------------------------

export const SnapshotMsg = Type.Object(
  { type: Type.Literal('snapshot'), revision: Revision, hash: Type.String(), slice: Slice },
  { additionalProperties: false },
);
/**
 * The slice at `revision` as a patch on the one with hash `baseHash`, which the agent last acked.
 * The agent applies it only on that base and checks the result hashes to `hash`; otherwise it nacks
 * and the server sends the whole snapshot. In a join storm this turns a push of every endpoint of a
 * service to every caller into a push of the one endpoint that arrived.
 */
export const DeltaMsg = Type.Object(
  { type: Type.Literal('delta'), revision: Revision, hash: Type.String(), baseHash: Type.String(), patch: SlicePatch },
  { additionalProperties: false },
);
export const CertMsg = Type.Object(
  {
    type: Type.Literal('cert'),
    id: Type.String(),
    kind: Type.Union([Type.Literal('host'), Type.Literal('service')]),
    name: Name,
    certPem: Type.String(),
    chainPem: Type.String(),
    notAfter: Type.String(),
  },
  { additionalProperties: false },
);
export const PingMsg = Type.Object({ type: Type.Literal('ping'), at: Type.String() }, { additionalProperties: false });
/** The answer to a message that could not be taken: invalid, unknown, or refused. */
export const ErrorMsg = Type.Object(
  {
    type: Type.Literal('error'),
    code: Type.String(),
    message: Type.String(),
    /** The id of the csr, or the type of the message, this answers. */
    ref: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const ServerMessage = Type.Union([SnapshotMsg, DeltaMsg, CertMsg, PingMsg, ErrorMsg]);
export type SnapshotMsg = Static<typeof SnapshotMsg>;
export type DeltaMsg = Static<typeof DeltaMsg>;
export type CertMsg = Static<typeof CertMsg>;
export type PingMsg = Static<typeof PingMsg>;
export type ErrorMsg = Static<typeof ErrorMsg>;
export type ServerMessage = Static<typeof ServerMessage>;

// ---- join (HTTPS, before the agent has a certificate) ------------------------------------------

export const JoinRequest = Type.Object(
  {
    token: Type.String({ minLength: 1, maxLength: 256 }),
    host: Name,
    csr: Type.String({ maxLength: 16384 }),
    services: Type.Array(Name, { maxItems: 256 }),
  },
  { additionalProperties: false },
);
export type JoinRequest = Static<typeof JoinRequest>;
export interface JoinResponse {
  host: string;
  spiffeId: string;
  certPem: string;
  chainPem: string;
  notAfter: string;
  caBundle: string[];
  trustDomain: string;
}

// ---- validators ------------------------------------------------------------------------------

const agentValidators = {
  hello: compile(HelloMsg),
  ack: compile(AckMsg),
  nack: compile(NackMsg),
  health: compile(HealthMsg),
  csr: compile(CsrMsg),
  stats: compile(StatsMsg),
  error: compile(AgentErrorMsg),
};
const serverValidators = {
  snapshot: compile(SnapshotMsg),
  delta: compile(DeltaMsg),
  cert: compile(CertMsg),
  ping: compile(PingMsg),
  error: compile(ErrorMsg),
};
export const sliceValidator = compile(Slice);
export const joinRequestValidator = compile(JoinRequest);

export type Decoded<T> = { ok: true; msg: T } | { ok: false; code: 'HM_ERR_BAD_MESSAGE' | 'HM_ERR_UNKNOWN_MESSAGE'; error: string; type?: string };

function decode<T>(raw: string | Buffer, validators: Record<string, { violations(v: unknown): Array<{ field: string; message: string }> }>): Decoded<T> {
  let value: unknown;
  try {
    value = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    return { ok: false, code: 'HM_ERR_BAD_MESSAGE', error: 'message is not JSON' };
  }
  if (typeof value !== 'object' || value === null || typeof (value as { type?: unknown }).type !== 'string') {
    return { ok: false, code: 'HM_ERR_BAD_MESSAGE', error: 'message must be a JSON object with a string "type"' };
  }
  const type = (value as { type: string }).type.slice(0, 64);
  const v = Object.hasOwn(validators, type) ? validators[type] : undefined;
  if (!v) return { ok: false, code: 'HM_ERR_UNKNOWN_MESSAGE', error: `unknown message type "${type}"`, type };
  const violations = v.violations(value);
  if (violations.length > 0) {
    const first = violations[0]!;
    return { ok: false, code: 'HM_ERR_BAD_MESSAGE', error: `invalid ${type} message: ${first.field || '(root)'}: ${first.message}`, type };
  }
  return { ok: true, msg: value as T };
}

export function decodeAgentMessage(raw: string | Buffer): Decoded<AgentMessage> {
  return decode<AgentMessage>(raw, agentValidators);
}

export function decodeServerMessage(raw: string | Buffer): Decoded<ServerMessage> {
  return decode<ServerMessage>(raw, serverValidators);
}
