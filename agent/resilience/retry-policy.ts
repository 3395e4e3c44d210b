// Whether to retry one failed attempt: a pure decision from the route's retry settings, the request
// method and the attempt's outcome. The budget (retry-budget.ts) is asked only after this says yes,
// so refused retries do not spend it:
//
//   if (retryDecision(policy, method, outcome, retriesDone) === 'retry' && budget.tryWithdraw()) …
//
// The caller also owns two preconditions this cannot see: nothing of the response was sent to the
// client yet, and the request body is still at hand (buffered) to be sent again.
//
// Conditions (`on`), after Envoy's retry_on, which operators of Istio and Consul know:
//   connect-failure  no connection could be made (no byte of the request reached the endpoint)
//   reset            the connection broke before a response head
//   502, 503, 504    that status; 504 also covers a per-try timeout (the proxy would answer 504)
//   5xx              any 5xx status, and any attempt with no response (connect failure, reset, timeout)
//
// Idempotency: only GET, HEAD, OPTIONS, PUT, DELETE and TRACE are retried (RFC 9110 §9.2.2) unless
// the route says nonIdempotent. One exception: a connect failure is retried whatever the method,
// because the request never left this agent, so sending it elsewhere cannot apply it twice.
//
// Defaults (compileRetryPolicy):
//   - a route without `retries` (or no route): one retry, on connect-failure only. Safe for every
//     method and it is what makes a restarted or vanished instance invisible to callers.
//   - `retries` without `on`: connect-failure, reset and 503 (Istio's default retryOn, less the
//     gRPC codes): the failures that say "this instance did not handle it", not "it failed".
//   - `attempts` counts retries, not tries (as Istio): attempts 2 means up to 3 tries in all;
//     attempts 0 turns retries off, connect failures included.

import type { Outcome } from './types.js';

export type RetryOn = 'connect-failure' | 'reset' | '502' | '503' | '504' | '5xx';

/** The retry settings of a Route, durations already in ms (see from-spec.ts). */
export interface RetrySettings {
  attempts: number;
  perTryTimeoutMs?: number | undefined;
  on?: readonly RetryOn[] | undefined;
  nonIdempotent?: boolean | undefined;
  budgetPercent?: number | undefined;
}

// Conditions as bits: the per-request check is a mask test, not an array search.
export const RETRY_ON_CONNECT_FAILURE = 1;
export const RETRY_ON_RESET = 2;
export const RETRY_ON_502 = 4;
export const RETRY_ON_503 = 8;
export const RETRY_ON_504 = 16;
export const RETRY_ON_5XX = 32;

const BITS: Readonly<Record<RetryOn, number>> = {
  'connect-failure': RETRY_ON_CONNECT_FAILURE,
  reset: RETRY_ON_RESET,
  '502': RETRY_ON_502,
  '503': RETRY_ON_503,
  '504': RETRY_ON_504,
  '5xx': RETRY_ON_5XX,
};

export interface RetryPolicy {
  /** Retries allowed after the first try. */
  readonly attempts: number;
  /** Timeout of each try; null: only the route's overall timeout applies. */
  readonly perTryTimeoutMs: number | null;
  /** RETRY_ON_* bits. */
  readonly on: number;
  readonly nonIdempotent: boolean;
  /** For the service's RetryBudget. */
  readonly budgetPercent: number;
}

export const DEFAULT_RETRY_ON: readonly RetryOn[] = Object.freeze(['connect-failure', 'reset', '503'] as RetryOn[]);
export const DEFAULT_BUDGET_PERCENT = 20;

/** What a route without `retries` gets: one retry of connect failures. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  attempts: 1,
  perTryTimeoutMs: null,
  on: RETRY_ON_CONNECT_FAILURE,
  nonIdempotent: false,
  budgetPercent: DEFAULT_BUDGET_PERCENT,
});

/** Compile a route's retry settings once, at config time; null/undefined gives the default. */
export function compileRetryPolicy(settings: RetrySettings | null | undefined): RetryPolicy {
  if (settings == null) return DEFAULT_RETRY_POLICY;
  if (!Number.isInteger(settings.attempts) || settings.attempts < 0) throw new RangeError(`attempts must be an integer >= 0, got ${settings.attempts}`);
  let on = 0;
  for (const c of settings.on ?? DEFAULT_RETRY_ON) {
    const bit = BITS[c];
    if (bit === undefined) throw new RangeError(`unknown retry condition "${String(c)}"`);
    on |= bit;
  }
  return Object.freeze({
    attempts: settings.attempts,
    perTryTimeoutMs: settings.perTryTimeoutMs ?? null,
    on,
    nonIdempotent: settings.nonIdempotent ?? false,
    budgetPercent: settings.budgetPercent ?? DEFAULT_BUDGET_PERCENT,
  });
}

/** RFC 9110 idempotent methods (CONNECT, POST, PATCH are not). Methods are case-sensitive. */
export function isIdempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'PUT':
    case 'DELETE':
    case 'TRACE':
      return true;
    default:
      return false;
  }
}

/** The RETRY_ON_* bits under which this outcome may be retried (0: a success, or not retryable). */
export function outcomeBits(outcome: Outcome): number {
  switch (outcome) {
    case 'connect-failure':
      return RETRY_ON_CONNECT_FAILURE | RETRY_ON_5XX;
    case 'reset':
      return RETRY_ON_RESET | RETRY_ON_5XX;
    case 'timeout':
      return RETRY_ON_504 | RETRY_ON_5XX;
    case 502:
      return RETRY_ON_502 | RETRY_ON_5XX;
    case 503:
      return RETRY_ON_503 | RETRY_ON_5XX;
    case 504:
      return RETRY_ON_504 | RETRY_ON_5XX;
    default:
      return typeof outcome === 'number' && outcome >= 500 && outcome <= 599 ? RETRY_ON_5XX : 0;
  }
}

/**
 * - 'retry': retry (if the budget allows)
 * - 'not-retryable': the outcome is a success or matches none of the route's conditions
 * - 'non-idempotent': it would be retried, but the method is not idempotent
 * - 'attempts-exhausted': the route's retries are used up
 */
export type RetryDecision = 'retry' | 'not-retryable' | 'non-idempotent' | 'attempts-exhausted';

/**
 * @param retriesDone retries already made for this request (0 after the first try failed)
 */
export function retryDecision(policy: RetryPolicy, method: string, outcome: Outcome, retriesDone: number): RetryDecision {
  if ((outcomeBits(outcome) & policy.on) === 0) return 'not-retryable';
  if (outcome !== 'connect-failure' && !policy.nonIdempotent && !isIdempotent(method)) return 'non-idempotent';
  if (retriesDone >= policy.attempts) return 'attempts-exhausted';
  return 'retry';
}

export function shouldRetry(policy: RetryPolicy, method: string, outcome: Outcome, retriesDone: number): boolean {
  return retryDecision(policy, method, outcome, retriesDone) === 'retry';
}
