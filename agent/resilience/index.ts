// Resilience: the per-service guards of the outbound proxy. Outlier detection takes failing
// endpoints out of rotation, the circuit breaker caps what is sent, the retry policy says whether a
// failed try may be retried and the retry budget bounds how many retries there are in all.
export { OutlierDetector, OUTLIER_DEFAULTS, type OutlierOptions } from './outlier.js';
export { RetryBudget, RETRY_BUDGET_DEFAULTS, type RetryBudgetOptions } from './retry-budget.js';
export {
  compileRetryPolicy,
  retryDecision,
  shouldRetry,
  isIdempotent,
  outcomeBits,
  DEFAULT_RETRY_POLICY,
  DEFAULT_RETRY_ON,
  DEFAULT_BUDGET_PERCENT,
  RETRY_ON_CONNECT_FAILURE,
  RETRY_ON_RESET,
  RETRY_ON_502,
  RETRY_ON_503,
  RETRY_ON_504,
  RETRY_ON_5XX,
  type RetryDecision,
  type RetryOn,
  type RetryPolicy,
  type RetrySettings,
} from './retry-policy.js';
export { CircuitBreaker, CIRCUIT_BREAKER_DEFAULTS, type CircuitBreakerLimits, type CircuitBreakerReason } from './circuit-breaker.js';
export { outlierOptionsFromSpec, circuitBreakerLimitsFromSpec, retryPolicyFromSpec, retryBudgetOptionsFromSpec } from './from-spec.js';
export { isFailureOutcome, monotonicClock, type Clock, type Outcome } from './types.js';
