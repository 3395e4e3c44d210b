// From the resources an operator writes (TrafficPolicy, Route: durations as "10s") to the plain
// millisecond options the resilience units take. Kept apart so the units themselves know nothing of
// the schema; called when a config snapshot is applied, never per request.

import { parseDuration } from '../../shared/duration.js';
import type { RouteSpec, TrafficPolicySpec } from '../../shared/resources.js';
import type { CircuitBreakerLimits } from './circuit-breaker.js';
import type { OutlierOptions } from './outlier.js';
import type { RetryBudgetOptions } from './retry-budget.js';
import { compileRetryPolicy, type RetryPolicy } from './retry-policy.js';

/**
 * Outlier detection options for a service. Without an `outlierDetection` block detection is still on
 * with the defaults (5 errors, 10 s, 30 s, 50 %), as Linkerd's failure accrual is: a dead instance
 * should leave the rotation without the operator having to ask.
 */
export function outlierOptionsFromSpec(policy: TrafficPolicySpec | null | undefined): Partial<OutlierOptions> {
  const od = policy?.outlierDetection;
  if (!od) return {};
  const out: Partial<OutlierOptions> = {};
  if (od.consecutiveErrors !== undefined) out.consecutiveErrors = od.consecutiveErrors;
  if (od.interval !== undefined) out.intervalMs = parseDuration(od.interval);
  if (od.baseEjectionTime !== undefined) out.baseEjectionMs = parseDuration(od.baseEjectionTime);
  if (od.maxEjectionPercent !== undefined) out.maxEjectionPercent = od.maxEjectionPercent;
  return out;
}

/** Circuit-breaker limits for a service; unset ones take the defaults (1024 each). */
export function circuitBreakerLimitsFromSpec(policy: TrafficPolicySpec | null | undefined): Partial<CircuitBreakerLimits> {
  const cb = policy?.circuitBreaker;
  if (!cb) return {};
  const out: Partial<CircuitBreakerLimits> = {};
  if (cb.maxConnections !== undefined) out.maxConnections = cb.maxConnections;
  if (cb.maxPending !== undefined) out.maxPending = cb.maxPending;
  if (cb.maxRequests !== undefined) out.maxRequests = cb.maxRequests;
  return out;
}

/** The compiled retry policy of a route (the default one when the route has no `retries`). */
export function retryPolicyFromSpec(route: RouteSpec | null | undefined): RetryPolicy {
  const r = route?.retries;
  if (!r) return compileRetryPolicy(null);
  return compileRetryPolicy({
    attempts: r.attempts,
    perTryTimeoutMs: r.perTryTimeout !== undefined ? parseDuration(r.perTryTimeout) : undefined,
    on: r.on,
    nonIdempotent: r.nonIdempotent,
    budgetPercent: r.budgetPercent,
  });
}

/** Retry budget options of a route: its budgetPercent, the other settings at their defaults. */
export function retryBudgetOptionsFromSpec(route: RouteSpec | null | undefined): Partial<RetryBudgetOptions> {
  const pct = route?.retries?.budgetPercent;
  return pct === undefined ? {} : { budgetPercent: pct };
}
