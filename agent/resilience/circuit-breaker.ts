// Circuit breaker as Envoy's (and so Istio's connectionPool, Kuma's MeshCircuitBreaker): not a
// state machine that opens after failures, but hard ceilings on what one agent sends to one upstream
// service, so that a slow service makes its callers fail fast instead of queueing without bound:
//
//   maxConnections  connections open to the service's endpoints (all endpoints together)
//   maxPending      requests waiting for a connection (none free, pool not allowed to grow)
//   maxRequests     requests in flight
//
// tryAcquire* returns null when granted, or the reason to put in the immediate 503's header; every
// grant must be matched by one release. Counters only: no clock, no allocation per call.
//
// Defaults are Envoy's: 1024 each. maxPending 0 means no waiting at all: a request that cannot get
// a connection at once is refused.

export type CircuitBreakerReason = 'max-connections' | 'max-pending' | 'max-requests';

export interface CircuitBreakerLimits {
  maxConnections: number;
  maxPending: number;
  maxRequests: number;
}

export const CIRCUIT_BREAKER_DEFAULTS: Readonly<CircuitBreakerLimits> = Object.freeze({
  maxConnections: 1024,
  maxPending: 1024,
  maxRequests: 1024,
});

export class CircuitBreaker {
  private limitsValue: Readonly<CircuitBreakerLimits> = CIRCUIT_BREAKER_DEFAULTS;
  private connectionsNow = 0;
  private pendingNow = 0;
  private requestsNow = 0;
  private tripped = 0;

  constructor(limits: Partial<CircuitBreakerLimits> = {}) {
    this.setLimits(limits);
  }

  /**
   * New limits from a config change. Counters are kept: when a limit drops below what is in use,
   * nothing is cut, new acquisitions are refused until usage is back under it.
   */
  setLimits(limits: Partial<CircuitBreakerLimits>): void {
    const next: CircuitBreakerLimits = { ...CIRCUIT_BREAKER_DEFAULTS };
    for (const k of Object.keys(limits) as (keyof CircuitBreakerLimits)[]) {
      const v = limits[k];
      if (v !== undefined) next[k] = v;
    }
    for (const k of Object.keys(next) as (keyof CircuitBreakerLimits)[]) {
      if (!Number.isInteger(next[k]) || next[k] < 0) throw new RangeError(`${k} must be an integer >= 0, got ${next[k]}`);
    }
    this.limitsValue = Object.freeze(next);
  }

  get limits(): Readonly<CircuitBreakerLimits> {
    return this.limitsValue;
  }

  /** Before opening a new connection to any endpoint of the service. */
  tryAcquireConnection(): CircuitBreakerReason | null {
    if (this.connectionsNow >= this.limitsValue.maxConnections) return this.trip('max-connections');
    this.connectionsNow++;
    return null;
  }

  /** When a connection closes (whatever the reason). */
  releaseConnection(): void {
    // Never below zero: a double release must not lift the ceiling for good.
    if (this.connectionsNow > 0) this.connectionsNow--;
  }

  /** Before a request starts waiting for a connection. */
  tryAcquirePending(): CircuitBreakerReason | null {
    if (this.pendingNow >= this.limitsValue.maxPending) return this.trip('max-pending');
    this.pendingNow++;
    return null;
  }

  /** When the waiting request got its connection, or gave up. */
  releasePending(): void {
    if (this.pendingNow > 0) this.pendingNow--;
  }

  /** Before a request (each try, retries included) is sent. */
  tryAcquireRequest(): CircuitBreakerReason | null {
    if (this.requestsNow >= this.limitsValue.maxRequests) return this.trip('max-requests');
    this.requestsNow++;
    return null;
  }

  /** When the request's response ended, or it failed. */
  releaseRequest(): void {
    if (this.requestsNow > 0) this.requestsNow--;
  }

  get connections(): number {
    return this.connectionsNow;
  }

  get pending(): number {
    return this.pendingNow;
  }

  get requests(): number {
    return this.requestsNow;
  }

  /** Refusals so far, all reasons (for metrics). */
  get refusals(): number {
    return this.tripped;
  }

  private trip(reason: CircuitBreakerReason): CircuitBreakerReason {
    this.tripped++;
    return reason;
  }
}
