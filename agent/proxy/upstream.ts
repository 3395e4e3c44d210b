// Everything the outbound side keeps per upstream service: its endpoints, balancer, outlier
// detector, circuit breaker, retry budget and routes. The state (ejections, EWMA, counters)
// outlives config pushes; only the settings are replaced, and all at once.
import { parseDuration } from '../../shared/duration.js';
import type { Endpoint, UpstreamSlice } from '../../shared/protocol.js';
import type { RouteSpec } from '../../shared/resources.js';
import { coarseClock, createBalancer, DEFAULT_BALANCER, EligibleSet, WeightedSubsets, systemRandom, type Balancer } from '../lb/index.js';
import {
  CircuitBreaker,
  circuitBreakerLimitsFromSpec,
  OutlierDetector,
  outlierOptionsFromSpec,
  RetryBudget,
  retryBudgetOptionsFromSpec,
  retryPolicyFromSpec,
  type RetryPolicy,
} from '../resilience/index.js';

export interface CompiledRule {
  pathPrefix: string | null;
  path: string | null;
  methods: ReadonlySet<string> | null;
  headers: ReadonlyArray<readonly [string, string]>;
  split: WeightedSubsets<Endpoint>;
}

/** Settings compiled from one snapshot; swapped in whole on commit. */
export interface UpstreamSettings {
  protocol: 'http' | 'tcp';
  rules: CompiledRule[];
  timeoutMs: number;
  perTryTimeoutMs: number;
  connectTimeoutMs: number;
  retry: RetryPolicy;
  /** Log each request: the Service's `accessLog`, else the Mesh's. */
  accessLog: boolean;
}

const labelsOf = (e: Endpoint): Readonly<Record<string, string>> => e.labels;

function compileRules(route: RouteSpec | null): CompiledRule[] {
  // No Route: one rule sending everything to every eligible endpoint.
  const rules = route?.rules ?? [{ destinations: [{ weight: 100 }] }];
  return rules.map((r) => ({
    pathPrefix: r.match?.pathPrefix ?? null,
    path: r.match?.path ?? null,
    methods: r.match?.methods ? new Set(r.match.methods) : null,
    headers: Object.entries(r.match?.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
    split: new WeightedSubsets<Endpoint>(r.destinations, labelsOf, systemRandom),
  }));
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
/** With no Route timeout, a request may take this long before the proxy answers 504. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

/** Compile a snapshot's upstream into settings; throws (→ nack) on anything unusable. */
export function compileUpstream(slice: UpstreamSlice, meshAccessLog = false): { settings: UpstreamSettings; apply: (u: UpstreamState) => void } {
  const route = slice.route;
  const timeoutMs = route?.timeout ? parseDuration(route.timeout) : DEFAULT_REQUEST_TIMEOUT_MS;
  const settings: UpstreamSettings = {
    protocol: slice.spec.protocol,
    rules: compileRules(route),
    timeoutMs,
    perTryTimeoutMs: route?.retries?.perTryTimeout ? parseDuration(route.retries.perTryTimeout) : timeoutMs,
    connectTimeoutMs: slice.trafficPolicy?.connectTimeout ? parseDuration(slice.trafficPolicy.connectTimeout) : DEFAULT_CONNECT_TIMEOUT_MS,
    retry: retryPolicyFromSpec(route),
    accessLog: slice.spec.accessLog ?? meshAccessLog,
  };
  // Construct what can throw now, so a bad value fails prepare() rather than commit().
  const outlierOpts = outlierOptionsFromSpec(slice.trafficPolicy);
  new OutlierDetector(outlierOpts);
  const limits = circuitBreakerLimitsFromSpec(slice.trafficPolicy);
  new CircuitBreaker(limits);
  const budgetOpts = retryBudgetOptionsFromSpec(route);
  const balancerKind = slice.trafficPolicy?.loadBalancer ?? DEFAULT_BALANCER;
  return {
    settings,
    apply: (u) => u.update(slice, settings, { outlierOpts, limits, budgetOpts, balancerKind }),
  };
}

export class UpstreamState {
  settings!: UpstreamSettings;
  endpoints: Endpoint[] = [];
  balancer!: Balancer<Endpoint>;
  outlier!: OutlierDetector;
  eligible!: EligibleSet<Endpoint>;
  readonly breaker = new CircuitBreaker();
  budget!: RetryBudget;
  private balancerKind = '';
  private outlierKey = '';
  private budgetKey = '';

  constructor(readonly service: string) {}

  update(
    slice: UpstreamSlice,
    settings: UpstreamSettings,
    o: {
      outlierOpts: ConstructorParameters<typeof OutlierDetector>[0];
      limits: ConstructorParameters<typeof CircuitBreaker>[0];
      budgetOpts: ConstructorParameters<typeof RetryBudget>[1];
      balancerKind: Parameters<typeof createBalancer>[0];
    },
  ): void {
    this.settings = settings;
    // Keep learned state unless the algorithm or its settings changed.
    const outlierKey = JSON.stringify(o.outlierOpts);
    if (outlierKey !== this.outlierKey) {
      this.outlierKey = outlierKey;
      this.outlier = new OutlierDetector(o.outlierOpts);
      this.eligible = new EligibleSet<Endpoint>({ keyOf: (e) => e.host, isHealthy: (e) => e.healthy }, this.outlier);
    }
    if (o.balancerKind !== this.balancerKind) {
      this.balancerKind = o.balancerKind;
      this.balancer = createBalancer<Endpoint>(o.balancerKind);
    }
    const budgetKey = JSON.stringify(o.budgetOpts);
    if (budgetKey !== this.budgetKey) {
      this.budgetKey = budgetKey;
      this.budget = new RetryBudget(coarseClock, o.budgetOpts);
    }
    this.breaker.setLimits(o.limits ?? {});
    this.endpoints = slice.endpoints;
    this.outlier.setEndpoints(slice.endpoints.map((e) => e.host));
    this.balancer.setEndpoints(slice.endpoints);
    this.eligible.setEndpoints(slice.endpoints);
  }

  /** Eligible endpoints now (healthy, not ejected): a stable array until something changes. */
  current(): readonly Endpoint[] {
    return this.eligible.current(coarseClock.now());
  }
}
