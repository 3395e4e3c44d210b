// Resilience units, with time passed in or read from a fake clock: outlier detection, retry budget,
// retry policy, circuit breaker, and the mapping from TrafficPolicy/Route specs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CircuitBreaker,
  circuitBreakerLimitsFromSpec,
  compileRetryPolicy,
  DEFAULT_RETRY_POLICY,
  isFailureOutcome,
  isIdempotent,
  OutlierDetector,
  outlierOptionsFromSpec,
  RetryBudget,
  retryBudgetOptionsFromSpec,
  retryDecision,
  retryPolicyFromSpec,
  shouldRetry,
  type Outcome,
  type RetryDecision,
  type RetrySettings,
} from '../../agent/resilience/index.js';

class FakeClock {
  t = 0;
  now(): number {
    return this.t;
  }
}

function failTimes(o: OutlierDetector, key: string, n: number, now: number): boolean {
  let ejected = false;
  for (let i = 0; i < n; i++) ejected = o.onFailure(key, now) || ejected;
  return ejected;
}

// ---------- outlier detection ----------

test('outlier: ejected at the 5th consecutive failure; a success resets the count', () => {
  const o = new OutlierDetector();
  o.setEndpoints(['a', 'b', 'c', 'd']);
  assert.equal(failTimes(o, 'a', 4, 0), false);
  o.onSuccess('a');
  assert.equal(failTimes(o, 'a', 4, 0), false);
  assert.equal(o.isEjected('a', 0), false);
  assert.equal(o.onFailure('a', 1000), true);
  assert.equal(o.isEjected('a', 1000), true);
  assert.equal(o.ejections, 1);
});

test('outlier: ejection lasts base × times ejected, capped; re-admitted exactly when it ends', () => {
  const o = new OutlierDetector({ baseEjectionMs: 30_000, intervalMs: 10_000 });
  o.setEndpoints(['a', 'b']);
  const v0 = o.version;
  failTimes(o, 'a', 5, 0);
  assert.equal(o.version, v0 + 1);
  assert.equal(o.ejectedUntil('a', 0), 30_000);
  assert.equal(o.nextReadmitAt, 30_000);
  assert.equal(o.isEjected('a', 29_999), true);
  assert.equal(o.isEjected('a', 30_000), false);
  // Failures of requests still in flight while ejected are ignored.
  assert.equal(failTimes(o, 'a', 10, 20_000), false);
  o.sweep(30_000);
  assert.equal(o.version, v0 + 2);
  assert.equal(o.nextReadmitAt, Infinity);
  assert.equal(o.ejectedCount(30_000), 0);

  // Fails again at once: second ejection, twice as long.
  failTimes(o, 'a', 5, 30_001);
  assert.equal(o.ejectedUntil('a', 30_001), 30_001 + 60_000);
  // Third, fourth…: 90 s, 120 s… up to the 300 s cap.
  let t = 90_001;
  for (const expected of [90_000, 120_000, 150_000, 180_000, 210_000, 240_000, 270_000, 300_000, 300_000]) {
    assert.equal(failTimes(o, 'a', 5, t), true);
    assert.equal(o.ejectedUntil('a', t), t + expected);
    t += expected;
  }
});

test('outlier: each healthy interval after re-admission lowers the multiplier', () => {
  const o = new OutlierDetector({ baseEjectionMs: 30_000, intervalMs: 10_000 });
  o.setEndpoints(['a', 'b']);
  failTimes(o, 'a', 5, 0); // 30 s, back at 30 s
  failTimes(o, 'a', 5, 30_000); // 60 s, back at 90 s
  failTimes(o, 'a', 5, 90_000); // 90 s, back at 180 s
  // 25 s healthy after 180 s: two full intervals take the multiplier from 3 to 1, this ejection is ×2.
  failTimes(o, 'a', 5, 205_000);
  assert.equal(o.ejectedUntil('a', 205_000), 205_000 + 60_000);
  // Long healthy: back to the base time.
  failTimes(o, 'a', 5, 265_000 + 3_600_000);
  assert.equal(o.ejectedUntil('a', 3_865_000), 3_865_000 + 30_000);
});

test('outlier: never more than maxEjectionPercent of the set; the held-back one goes when there is room', () => {
  const o = new OutlierDetector({ maxEjectionPercent: 50 });
  o.setEndpoints(['a', 'b', 'c']);
  assert.equal(failTimes(o, 'a', 5, 0), true);
  // 2 of 3 would be 67 % > 50 %.
  assert.equal(failTimes(o, 'b', 5, 0), false);
  assert.equal(o.isEjected('b', 0), false);
  assert.equal(o.overflows, 1);
  // b keeps failing; once a is back, b's next failure ejects it.
  assert.equal(o.onFailure('b', 10_000), false);
  assert.equal(o.onFailure('b', 30_000), true);
  assert.equal(o.isEjected('a', 30_000), false);
  assert.equal(o.isEjected('b', 30_000), true);
});

test('outlier: the percent cap applies to small sets (Envoy semantics)', () => {
  const one = new OutlierDetector({ maxEjectionPercent: 50 });
  one.setEndpoints(['a']);
  assert.equal(failTimes(one, 'a', 20, 0), false, 'the only endpoint is never ejected at 50 %');
  const two = new OutlierDetector({ maxEjectionPercent: 50 });
  two.setEndpoints(['a', 'b']);
  assert.equal(failTimes(two, 'a', 5, 0), true, '1 of 2 is 50 %');
  assert.equal(failTimes(two, 'b', 5, 0), false);
  const ten = new OutlierDetector({ maxEjectionPercent: 10 });
  ten.setEndpoints(['a', 'b', 'c']);
  assert.equal(failTimes(ten, 'a', 5, 0), false, '1 of 3 is over 10 %');
  const always = new OutlierDetector({ maxEjectionPercent: 10, alwaysEjectOne: true });
  always.setEndpoints(['a', 'b', 'c']);
  assert.equal(failTimes(always, 'a', 5, 0), true, 'alwaysEjectOne: the first one goes anyway');
  assert.equal(failTimes(always, 'b', 5, 0), false);
  const all = new OutlierDetector({ maxEjectionPercent: 100 });
  all.setEndpoints(['a']);
  assert.equal(failTimes(all, 'a', 5, 0), true);
});

test('outlier: endpoint-set updates keep state, and a removed ejected endpoint frees its place', () => {
  const o = new OutlierDetector({ maxEjectionPercent: 50 });
  o.setEndpoints(['a', 'b', 'c']);
  failTimes(o, 'a', 5, 0);
  o.setEndpoints(['a', 'b', 'c', 'd']);
  assert.equal(o.isEjected('a', 1), true);
  o.setEndpoints(['b', 'c', 'd']);
  assert.equal(o.isEjected('a', 1), false);
  assert.equal(o.nextReadmitAt, Infinity);
  assert.equal(failTimes(o, 'b', 5, 2), true);
});

test('outlier: failure outcomes are 5xx and no response at all', () => {
  const cases: [Outcome, boolean][] = [
    ['connect-failure', true],
    ['reset', true],
    ['timeout', true],
    [500, true],
    [503, true],
    [599, true],
    [200, false],
    [404, false],
    [429, false],
  ];
  for (const [outcome, failed] of cases) assert.equal(isFailureOutcome(outcome), failed, String(outcome));
});

test('outlier: options are validated', () => {
  assert.throws(() => new OutlierDetector({ consecutiveErrors: 0 }), /consecutiveErrors/);
  assert.throws(() => new OutlierDetector({ maxEjectionPercent: 101 }), /maxEjectionPercent/);
  const o = new OutlierDetector({ baseEjectionMs: 600_000 });
  assert.equal(o.options.maxEjectionMs, 600_000, 'the cap is at least the base time');
  assert.equal(new OutlierDetector().options.maxEjectionMs, 300_000);
});

// ---------- retry budget ----------

test('retry budget: under sustained failures retries stay near 20 % of requests', () => {
  const clock = new FakeClock();
  const budget = new RetryBudget(clock);
  let requests = 0;
  let retries = 0;
  // 1000 requests/s for 60 s, every one failing and asking for retries until refused.
  for (let t = 0; t < 60_000; t++) {
    clock.t = t;
    budget.deposit();
    if (t >= 30_000) requests++;
    while (budget.tryWithdraw()) if (t >= 30_000) retries++;
  }
  const ratio = retries / requests;
  // 20 % plus the 10/s floor (1 % at this rate).
  assert.ok(ratio > 0.19 && ratio < 0.23, `retries were ${(ratio * 100).toFixed(1)} % of requests`);
  assert.ok(budget.retriesRefused > 0);
});

test('retry budget: at low traffic the floor of 10 retries/s allows every retry', () => {
  const clock = new FakeClock();
  const budget = new RetryBudget(clock);
  let refused = 0;
  // 2 requests/s, each failing and retried once, for a minute.
  for (let t = 0; t < 60_000; t += 500) {
    clock.t = t;
    budget.deposit();
    if (!budget.tryWithdraw()) refused++;
  }
  assert.equal(refused, 0);
});

test('retry budget: the floor is a reserve per window; it comes back as the window slides', () => {
  const clock = new FakeClock();
  const budget = new RetryBudget(clock, { minRetriesPerSecond: 10, windowMs: 10_000 });
  assert.equal(budget.available(), 100);
  let granted = 0;
  while (budget.tryWithdraw()) granted++;
  assert.equal(granted, 100);
  assert.equal(budget.tryWithdraw(), false);
  clock.t = 5_000;
  assert.equal(budget.tryWithdraw(), false, 'spent retries still count inside the window');
  clock.t = 10_000;
  assert.equal(budget.available(), 100, 'the window slid past them');
  // budgetPercent 0 with no floor: no retries at all.
  const none = new RetryBudget(clock, { budgetPercent: 0, minRetriesPerSecond: 0 });
  for (let i = 0; i < 100; i++) none.deposit();
  assert.equal(none.tryWithdraw(), false);
  // 50 %: two requests earn one retry.
  const half = new RetryBudget(clock, { budgetPercent: 50, minRetriesPerSecond: 0 });
  half.deposit();
  assert.equal(half.tryWithdraw(), false);
  half.deposit();
  assert.equal(half.tryWithdraw(), true);
  assert.equal(half.tryWithdraw(), false);
});

test('retry budget: a clock going backwards does not reopen old buckets', () => {
  const clock = new FakeClock();
  clock.t = 50_000;
  const budget = new RetryBudget(clock, { minRetriesPerSecond: 0 });
  for (let i = 0; i < 10; i++) budget.deposit();
  assert.equal(budget.available(), 2);
  clock.t = 40_000;
  assert.equal(budget.available(), 2);
  assert.equal(budget.tryWithdraw(), true);
  assert.equal(budget.available(), 1);
});

// ---------- retry policy ----------

test('retry policy: decision table', () => {
  const p = compileRetryPolicy({ attempts: 2, on: ['connect-failure', 'reset', '503'] });
  const table: [string, Outcome, number, RetryDecision][] = [
    ['GET', 'connect-failure', 0, 'retry'],
    ['GET', 'reset', 0, 'retry'],
    ['GET', 503, 0, 'retry'],
    ['GET', 503, 1, 'retry'],
    ['GET', 503, 2, 'attempts-exhausted'],
    ['GET', 502, 0, 'not-retryable'],
    ['GET', 504, 0, 'not-retryable'],
    ['GET', 'timeout', 0, 'not-retryable'],
    ['GET', 500, 0, 'not-retryable'],
    ['GET', 200, 0, 'not-retryable'],
    ['GET', 404, 0, 'not-retryable'],
    ['HEAD', 503, 0, 'retry'],
    ['OPTIONS', 'reset', 0, 'retry'],
    ['PUT', 503, 0, 'retry'],
    ['DELETE', 503, 0, 'retry'],
    ['TRACE', 503, 0, 'retry'],
    ['POST', 503, 0, 'non-idempotent'],
    ['PATCH', 'reset', 0, 'non-idempotent'],
    ['CONNECT', 503, 0, 'non-idempotent'],
    ['get', 503, 0, 'non-idempotent'], // methods are case-sensitive
    // Nothing was sent on a connect failure: safe to retry whatever the method.
    ['POST', 'connect-failure', 0, 'retry'],
    ['POST', 'connect-failure', 2, 'attempts-exhausted'],
  ];
  for (const [method, outcome, done, expected] of table) {
    assert.equal(retryDecision(p, method, outcome, done), expected, `${method} ${String(outcome)} after ${done}`);
  }
});

test('retry policy: 5xx covers every 5xx and no response; 504 covers per-try timeouts', () => {
  const p5xx = compileRetryPolicy({ attempts: 1, on: ['5xx'] });
  for (const o of [500, 501, 502, 503, 504, 599, 'connect-failure', 'reset', 'timeout'] as Outcome[]) {
    assert.equal(shouldRetry(p5xx, 'GET', o, 0), true, String(o));
  }
  for (const o of [200, 204, 301, 400, 429, 499] as Outcome[]) assert.equal(shouldRetry(p5xx, 'GET', o, 0), false, String(o));
  const gw = compileRetryPolicy({ attempts: 1, on: ['502', '504'] });
  assert.equal(shouldRetry(gw, 'GET', 502, 0), true);
  assert.equal(shouldRetry(gw, 'GET', 'timeout', 0), true);
  assert.equal(shouldRetry(gw, 'GET', 503, 0), false);
  assert.equal(shouldRetry(gw, 'GET', 'reset', 0), false);
});

test('retry policy: nonIdempotent allows POST; attempts 0 retries nothing', () => {
  const p = compileRetryPolicy({ attempts: 1, on: ['503'], nonIdempotent: true });
  assert.equal(retryDecision(p, 'POST', 503, 0), 'retry');
  const off = compileRetryPolicy({ attempts: 0, on: ['connect-failure', '5xx'] });
  assert.equal(retryDecision(off, 'GET', 'connect-failure', 0), 'attempts-exhausted');
});

test('retry policy: defaults', () => {
  // No retries block: one retry, connect failures only.
  assert.equal(compileRetryPolicy(undefined), DEFAULT_RETRY_POLICY);
  assert.equal(retryDecision(DEFAULT_RETRY_POLICY, 'GET', 'connect-failure', 0), 'retry');
  assert.equal(retryDecision(DEFAULT_RETRY_POLICY, 'POST', 'connect-failure', 0), 'retry');
  assert.equal(retryDecision(DEFAULT_RETRY_POLICY, 'GET', 'connect-failure', 1), 'attempts-exhausted');
  assert.equal(retryDecision(DEFAULT_RETRY_POLICY, 'GET', 'reset', 0), 'not-retryable');
  assert.equal(retryDecision(DEFAULT_RETRY_POLICY, 'GET', 503, 0), 'not-retryable');
  assert.equal(DEFAULT_RETRY_POLICY.budgetPercent, 20);
  // A retries block without `on`: connect-failure, reset, 503.
  const p = compileRetryPolicy({ attempts: 3 } satisfies RetrySettings);
  assert.equal(shouldRetry(p, 'GET', 'reset', 0), true);
  assert.equal(shouldRetry(p, 'GET', 503, 0), true);
  assert.equal(shouldRetry(p, 'GET', 502, 0), false);
  assert.equal(p.perTryTimeoutMs, null);
  assert.throws(() => compileRetryPolicy({ attempts: -1 }), /attempts/);
});

test('retry policy: idempotent methods', () => {
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) assert.equal(isIdempotent(m), true, m);
  for (const m of ['POST', 'PATCH', 'CONNECT', 'get', '']) assert.equal(isIdempotent(m), false, m);
});

// ---------- circuit breaker ----------

test('circuit breaker: each limit refuses past its ceiling with its reason, and frees on release', () => {
  const cb = new CircuitBreaker({ maxConnections: 2, maxPending: 1, maxRequests: 3 });
  assert.equal(cb.tryAcquireConnection(), null);
  assert.equal(cb.tryAcquireConnection(), null);
  assert.equal(cb.tryAcquireConnection(), 'max-connections');
  assert.equal(cb.connections, 2);
  cb.releaseConnection();
  assert.equal(cb.tryAcquireConnection(), null);

  assert.equal(cb.tryAcquirePending(), null);
  assert.equal(cb.tryAcquirePending(), 'max-pending');
  cb.releasePending();
  assert.equal(cb.tryAcquirePending(), null);

  for (let i = 0; i < 3; i++) assert.equal(cb.tryAcquireRequest(), null);
  assert.equal(cb.tryAcquireRequest(), 'max-requests');
  assert.equal(cb.requests, 3);
  cb.releaseRequest();
  assert.equal(cb.tryAcquireRequest(), null);
  assert.equal(cb.refusals, 3);
});

test('circuit breaker: maxPending 0 refuses any wait; double release never goes below zero', () => {
  const cb = new CircuitBreaker({ maxPending: 0 });
  assert.equal(cb.tryAcquirePending(), 'max-pending');
  cb.releaseRequest();
  cb.releaseRequest();
  assert.equal(cb.requests, 0);
  assert.deepEqual(new CircuitBreaker().limits, { maxConnections: 1024, maxPending: 1024, maxRequests: 1024 });
});

test('circuit breaker: lowering a limit under load refuses new work without cutting the old', () => {
  const cb = new CircuitBreaker({ maxRequests: 10 });
  for (let i = 0; i < 5; i++) cb.tryAcquireRequest();
  cb.setLimits({ maxRequests: 3 });
  assert.equal(cb.requests, 5);
  assert.equal(cb.tryAcquireRequest(), 'max-requests');
  cb.releaseRequest();
  cb.releaseRequest();
  assert.equal(cb.tryAcquireRequest(), 'max-requests', '3 still in flight: at the new limit');
  cb.releaseRequest();
  assert.equal(cb.tryAcquireRequest(), null);
  assert.equal(cb.requests, 3);
  assert.throws(() => cb.setLimits({ maxConnections: -1 }), /maxConnections/);
});

// ---------- from specs ----------

test('from spec: TrafficPolicy and Route map to the units\' options', () => {
  assert.deepEqual(outlierOptionsFromSpec(null), {});
  assert.deepEqual(
    outlierOptionsFromSpec({ service: 'web', outlierDetection: { consecutiveErrors: 3, interval: '5s', baseEjectionTime: '1m', maxEjectionPercent: 30 } }),
    { consecutiveErrors: 3, intervalMs: 5000, baseEjectionMs: 60_000, maxEjectionPercent: 30 },
  );
  assert.deepEqual(circuitBreakerLimitsFromSpec({ service: 'web', circuitBreaker: { maxConnections: 10, maxPending: 0 } }), {
    maxConnections: 10,
    maxPending: 0,
  });
  assert.equal(retryPolicyFromSpec(null), DEFAULT_RETRY_POLICY);
  const p = retryPolicyFromSpec({
    service: 'web',
    rules: [{ destinations: [{ weight: 100 }] }],
    retries: { attempts: 2, perTryTimeout: '1s', on: ['connect-failure', 'reset', '503'], budgetPercent: 10 },
  });
  assert.equal(p.attempts, 2);
  assert.equal(p.perTryTimeoutMs, 1000);
  assert.equal(p.budgetPercent, 10);
  assert.equal(shouldRetry(p, 'GET', 503, 1), true);
  assert.deepEqual(retryBudgetOptionsFromSpec({ service: 'web', rules: [{ destinations: [{ weight: 100 }] }], retries: { attempts: 1, budgetPercent: 5 } }), {
    budgetPercent: 5,
  });
  // The outlier defaults apply without a block.
  const o = new OutlierDetector(outlierOptionsFromSpec(undefined));
  assert.deepEqual(
    [o.options.consecutiveErrors, o.options.intervalMs, o.options.baseEjectionMs, o.options.maxEjectionPercent],
    [5, 10_000, 30_000, 50],
  );
});
