// The resources an operator declares, one schema each. The REST API, the CLI and the OpenAPI
// document all use these; nothing else defines their shape.
import Type, { type Static, type TSchema } from 'typebox';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import { NAME_PATTERN, TRUST_DOMAIN_PATTERN } from './identity.js';
import { compile, describePattern } from './validation.js';
import { HmError, validationError, type Violation } from './errors.js';
import { RESOURCE_KINDS, normalizeKind, type ResourceKind } from './kinds.js';

export const API_VERSION = 'hostmesh/v1';

describePattern(NAME_PATTERN, 'must be a DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit, at most 63 characters');
describePattern(DURATION_PATTERN, 'must be a duration such as 500ms, 5s, 1m or 24h');
describePattern(TRUST_DOMAIN_PATTERN, 'must be a lower-case DNS name such as hostmesh.local');
const Name = Type.String({ pattern: NAME_PATTERN, maxLength: 63, description: 'a DNS label: lower-case letters, digits and -' });
const Duration = Type.String({ pattern: DURATION_PATTERN, maxLength: 32, description: 'e.g. 500ms, 5s, 1m, 24h' });
const LabelKey = '^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$';
const Labels = Type.Record(Type.String({ pattern: LabelKey }), Type.String({ maxLength: 63 }), {
  description: 'string keys and values',
  maxProperties: 32,
});
const HttpMethod = Type.Union([
  Type.Literal('GET'),
  Type.Literal('HEAD'),
  Type.Literal('POST'),
  Type.Literal('PUT'),
  Type.Literal('PATCH'),
  Type.Literal('DELETE'),
  Type.Literal('OPTIONS'),
  Type.Literal('CONNECT'),
  Type.Literal('TRACE'),
]);
const HttpPath = Type.String({ pattern: '^/[^\\s]*$', maxLength: 1024, description: 'starts with /' });

export const MeshSpec = Type.Object(
  {
    trustDomain: Type.Optional(Type.String({ pattern: TRUST_DOMAIN_PATTERN, maxLength: 253 })),
    mtls: Type.Optional(Type.Union([Type.Literal('strict'), Type.Literal('permissive')])),
    defaultAccess: Type.Optional(Type.Union([Type.Literal('allow'), Type.Literal('deny')])),
    certTTL: Type.Optional(Duration),
    accessLog: Type.Optional(Type.Boolean()),
    disconnectGracePeriod: Type.Optional(Duration),
  },
  { additionalProperties: false },
);

export const ServiceSpec = Type.Object(
  {
    protocol: Type.Union([Type.Literal('http'), Type.Literal('tcp')]),
    port: Type.Integer({ minimum: 1, maximum: 65535, description: 'default port of the service on its hosts' }),
    accessLog: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

const RouteMatch = Type.Object(
  {
    pathPrefix: Type.Optional(HttpPath),
    path: Type.Optional(HttpPath),
    methods: Type.Optional(Type.Array(HttpMethod, { minItems: 1, maxItems: 9 })),
    headers: Type.Optional(Type.Record(Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), Type.String({ maxLength: 1024 }), { maxProperties: 16 })),
  },
  { additionalProperties: false },
);

const RouteDestination = Type.Object(
  {
    subset: Type.Optional(Labels),
    weight: Type.Integer({ minimum: 0, maximum: 100 }),
  },
  { additionalProperties: false },
);

export const RETRY_ON = ['connect-failure', 'reset', '502', '503', '504', '5xx'] as const;

export const RouteSpec = Type.Object(
  {
    service: Name,
    rules: Type.Array(
      Type.Object(
        {
          match: Type.Optional(RouteMatch),
          destinations: Type.Array(RouteDestination, { minItems: 1, maxItems: 16 }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 64 },
    ),
    timeout: Type.Optional(Duration),
    retries: Type.Optional(
      Type.Object(
        {
          attempts: Type.Integer({ minimum: 0, maximum: 10 }),
          perTryTimeout: Type.Optional(Duration),
          on: Type.Optional(
            Type.Array(
              Type.Union([Type.Literal('connect-failure'), Type.Literal('reset'), Type.Literal('502'), Type.Literal('503'), Type.Literal('504'), Type.Literal('5xx')]),
              { minItems: 1 },
            ),
          ),
          nonIdempotent: Type.Optional(Type.Boolean({ description: 'also retry POST/PATCH and other non-idempotent methods' })),
          budgetPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'retries as a share of requests (default 20)' })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

export const TrafficPolicySpec = Type.Object(
  {
    service: Name,
    loadBalancer: Type.Optional(Type.Union([Type.Literal('round-robin'), Type.Literal('least-request'), Type.Literal('p2c-ewma')])),
    connectTimeout: Type.Optional(Duration),
    circuitBreaker: Type.Optional(
      Type.Object(
        {
          maxConnections: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
          maxPending: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })),
          maxRequests: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        },
        { additionalProperties: false },
      ),
    ),
    outlierDetection: Type.Optional(
      Type.Object(
        {
          consecutiveErrors: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          interval: Type.Optional(Duration),
          baseEjectionTime: Type.Optional(Duration),
          maxEjectionPercent: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

const AccessPath = Type.String({
  pattern: '^/[^\\s*]*(\\*)?$',
  maxLength: 1024,
  description: 'an exact path, or a prefix ending in * (e.g. /admin/*)',
});

export const AccessPolicySpec = Type.Object(
  {
    service: Name,
    mode: Type.Optional(Type.Union([Type.Literal('enforce'), Type.Literal('audit')])),
    rules: Type.Array(
      Type.Object(
        {
          from: Type.Array(Type.Union([Name, Type.Literal('*')]), { minItems: 1, maxItems: 256 }),
          action: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
          http: Type.Optional(
            Type.Object(
              {
                methods: Type.Optional(Type.Array(HttpMethod, { minItems: 1 })),
                paths: Type.Optional(Type.Array(AccessPath, { minItems: 1, maxItems: 256 })),
              },
              { additionalProperties: false },
            ),
          ),
        },
        { additionalProperties: false },
      ),
      { maxItems: 1024 },
    ),
  },
  { additionalProperties: false },
);

export const SPEC_SCHEMAS: Record<ResourceKind, TSchema> = {
  Mesh: MeshSpec,
  Service: ServiceSpec,
  Route: RouteSpec,
  TrafficPolicy: TrafficPolicySpec,
  AccessPolicy: AccessPolicySpec,
};

export { RESOURCE_KINDS, normalizeKind, type ResourceKind };

export type MeshSpec = Static<typeof MeshSpec>;
export type ServiceSpec = Static<typeof ServiceSpec>;
export type RouteSpec = Static<typeof RouteSpec>;
export type TrafficPolicySpec = Static<typeof TrafficPolicySpec>;
export type AccessPolicySpec = Static<typeof AccessPolicySpec>;
export interface SpecOf {
  Mesh: MeshSpec;
  Service: ServiceSpec;
  Route: RouteSpec;
  TrafficPolicy: TrafficPolicySpec;
  AccessPolicy: AccessPolicySpec;
}

/** Read-only status the server adds. On input, `status.revision` names the version the writer last saw. */
export const ResourceStatus = Type.Object(
  {
    revision: Type.Integer({ minimum: 0, description: 'registry revision at which this resource was last written' }),
    createdAt: Type.Optional(Type.String()),
    updatedAt: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

function envelope<K extends ResourceKind>(kind: K): TSchema {
  return Type.Object(
    {
      apiVersion: Type.Optional(Type.Literal(API_VERSION)),
      kind: Type.Literal(kind),
      name: kind === 'Mesh' ? Type.Literal('default', { description: 'the Mesh is a singleton named default' }) : Name,
      labels: Type.Optional(Labels),
      spec: SPEC_SCHEMAS[kind],
      status: Type.Optional(ResourceStatus),
    },
    { additionalProperties: false, title: kind },
  );
}

export const RESOURCE_SCHEMAS: Record<ResourceKind, TSchema> = Object.fromEntries(
  RESOURCE_KINDS.map((k) => [k, envelope(k)]),
) as Record<ResourceKind, TSchema>;

/** Any resource document, as the OpenAPI document shows it. */
export const AnyResourceSchema = Type.Union(RESOURCE_KINDS.map((k) => RESOURCE_SCHEMAS[k]));

export interface Resource<K extends ResourceKind = ResourceKind> {
  apiVersion?: typeof API_VERSION;
  kind: K;
  name: string;
  labels?: Record<string, string>;
  spec: SpecOf[K];
  status?: { revision: number; createdAt?: string; updatedAt?: string };
}

/** A resource as the server returns it: status always present. */
export type StoredResource<K extends ResourceKind = ResourceKind> = Resource<K> & {
  apiVersion: typeof API_VERSION;
  status: { revision: number; createdAt: string; updatedAt: string };
};

const validators = Object.fromEntries(RESOURCE_KINDS.map((k) => [k, compile(RESOURCE_SCHEMAS[k])])) as Record<
  ResourceKind,
  ReturnType<typeof compile>
>;

export function unknownKindError(kind: unknown): HmError {
  return new HmError(
    'HM_ERR_UNKNOWN_KIND',
    `unknown kind "${String(kind)}": expected one of ${RESOURCE_KINDS.join(', ')}`,
  );
}

/**
 * Validate one resource document: its envelope and spec against the schema for its kind, then the
 * rules a schema cannot say (weights summing to 100, durations that parse). Throws HM_ERR_VALIDATION
 * or HM_ERR_UNKNOWN_KIND; `where` prefixes field names (e.g. `documents[2].`).
 */
export function validateResource(doc: unknown, where = ''): Resource {
  const violations = resourceViolations(doc, where);
  if (violations === 'unknown-kind') throw unknownKindError((doc as { kind?: unknown }).kind);
  if (violations.length > 0) throw validationError(violations, 'resource');
  return doc as Resource;
}

export function resourceViolations(doc: unknown, where = ''): Violation[] | 'unknown-kind' {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return [{ field: where.replace(/\.$/, ''), message: 'must be an object with kind, name and spec' }];
  }
  const kindText = (doc as { kind?: unknown }).kind;
  if (typeof kindText !== 'string') return [{ field: `${where}kind`, message: 'is required' }];
  const kind = RESOURCE_KINDS.includes(kindText as ResourceKind) ? (kindText as ResourceKind) : null;
  if (!kind) return 'unknown-kind';
  const v = validators[kind].violations(doc, where.replace(/\.$/, ''));
  if (v.length > 0) return v;
  return semanticViolations(doc as Resource, where);
}

function semanticViolations(r: Resource, where: string): Violation[] {
  const out: Violation[] = [];
  if (r.kind === 'Route') {
    const spec = r.spec as RouteSpec;
    spec.rules.forEach((rule, i) => {
      const sum = rule.destinations.reduce((s, d) => s + d.weight, 0);
      if (sum !== 100) {
        out.push({ field: `${where}spec.rules[${i}].destinations`, message: `weights must sum to 100 (they sum to ${sum})` });
      }
      if (rule.match?.path && rule.match.pathPrefix) {
        out.push({ field: `${where}spec.rules[${i}].match`, message: 'give path or pathPrefix, not both' });
      }
    });
    if (spec.retries?.perTryTimeout && spec.timeout && parseDuration(spec.retries.perTryTimeout) > parseDuration(spec.timeout)) {
      out.push({ field: `${where}spec.retries.perTryTimeout`, message: 'must not exceed spec.timeout' });
    }
  }
  if (r.kind === 'Mesh') {
    const spec = r.spec as MeshSpec;
    if (spec.certTTL) {
      const ms = parseDuration(spec.certTTL);
      if (ms < 60_000 || ms > 90 * 86_400_000) out.push({ field: `${where}spec.certTTL`, message: 'must be between 1m and 90d' });
    }
  }
  return out;
}

/** The reference to another Service a resource makes, if any. */
export function referencedService(r: Resource): string | null {
  if (r.kind === 'Route' || r.kind === 'TrafficPolicy' || r.kind === 'AccessPolicy') {
    return (r.spec as { service: string }).service;
  }
  return null;
}
