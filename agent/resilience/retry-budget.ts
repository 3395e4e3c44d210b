// A retry budget, as Linkerd's (tower's TpsBudget): retries may add at most `budgetPercent` % of the
// recent original requests, plus a floor of `minRetriesPerSecond` so that a service with little
// traffic can still retry its rare failures. A fixed count of retries per request ("3 attempts")
// multiplies load on a service that is already failing; a budget bounds the extra load at ~20 %
// whatever happens, so retries cannot turn an incident into an outage.
//
// Accounting in integer units: an original request deposits `budgetPercent` units, a retry costs
// 100. Deposits and withdrawals live in a ring of coarse buckets covering the window (default ten
// 1 s buckets over 10 s); a bucket is cleared when the window slides past it, so what was deposited
// or spent more than a window ago no longer counts. The floor is a standing reserve of
// minRetriesPerSecond × window retries per window. A retry is allowed while
// reserve + Σ(deposits − withdrawals) in the window ≥ 100 units.
//
// Coarse buckets instead of a timestamp per request: O(1) memory and no allocation per call, at the
// price of a window whose length wobbles by one bucket.

import type { Clock } from './types.js';

export interface RetryBudgetOptions {
  /** Retries as a share of original requests, in percent. */
  budgetPercent: number;
  /** Retries always allowed per second, whatever the traffic (averaged over the window). */
  minRetriesPerSecond: number;
  windowMs: number;
  buckets: number;
}

export const RETRY_BUDGET_DEFAULTS: Readonly<RetryBudgetOptions> = Object.freeze({
  budgetPercent: 20,
  minRetriesPerSecond: 10,
  windowMs: 10_000,
  buckets: 10,
});

const WITHDRAW_UNITS = 100;

export class RetryBudget {
  readonly options: Readonly<RetryBudgetOptions>;
  private readonly ring: Float64Array;
  // Numbers from the start (not bare declarations, which start as `undefined`): V8 then keeps the
  // fields unboxed, and the per-request updates allocate nothing.
  private readonly bucketMs: number = 0;
  private readonly reserve: number = 0;
  private epoch = 0;
  private sum = 0;
  private withdrawn = 0;
  private refused = 0;

  constructor(
    private readonly clock: Clock,
    options: Partial<RetryBudgetOptions> = {},
  ) {
    const o: RetryBudgetOptions = { ...RETRY_BUDGET_DEFAULTS };
    for (const k of Object.keys(options) as (keyof RetryBudgetOptions)[]) {
      const v = options[k];
      if (v !== undefined) o[k] = v;
    }
    if (!(o.budgetPercent >= 0 && o.budgetPercent <= 100)) throw new RangeError(`budgetPercent must be within 0..100, got ${o.budgetPercent}`);
    if (!(o.minRetriesPerSecond >= 0)) throw new RangeError(`minRetriesPerSecond must be >= 0, got ${o.minRetriesPerSecond}`);
    if (!Number.isInteger(o.buckets) || o.buckets < 1) throw new RangeError(`buckets must be an integer >= 1, got ${o.buckets}`);
    if (!(o.windowMs >= o.buckets)) throw new RangeError(`windowMs must be >= buckets, got ${o.windowMs}`);
    this.options = Object.freeze(o);
    this.ring = new Float64Array(o.buckets);
    this.bucketMs = o.windowMs / o.buckets;
    this.reserve = o.minRetriesPerSecond * (o.windowMs / 1000) * WITHDRAW_UNITS;
    this.epoch = Math.floor(clock.now() / this.bucketMs);
  }

  /** Count one original request (not a retry). */
  deposit(): void {
    const i = this.rotate();
    this.ring[i]! += this.options.budgetPercent;
    this.sum += this.options.budgetPercent;
  }

  /** Take one retry from the budget; false when it is spent (the proxy then answers with the failure). */
  tryWithdraw(): boolean {
    const i = this.rotate();
    if (this.reserve + this.sum < WITHDRAW_UNITS) {
      this.refused++;
      return false;
    }
    this.ring[i]! -= WITHDRAW_UNITS;
    this.sum -= WITHDRAW_UNITS;
    this.withdrawn++;
    return true;
  }

  /** Whole retries that could be taken now. */
  available(): number {
    this.rotate();
    return Math.max(0, Math.floor((this.reserve + this.sum) / WITHDRAW_UNITS));
  }

  /** Retries granted so far (for metrics). */
  get retriesGranted(): number {
    return this.withdrawn;
  }

  /** Retries refused for lack of budget so far (for metrics). */
  get retriesRefused(): number {
    return this.refused;
  }

  /** Slide the window to now; returns the index of the current bucket. */
  private rotate(): number {
    const n = this.ring.length;
    const epoch = Math.floor(this.clock.now() / this.bucketMs);
    // A clock that went backwards keeps the current bucket rather than reopening old ones.
    if (epoch > this.epoch) {
      const steps = Math.min(epoch - this.epoch, n);
      for (let k = 1; k <= steps; k++) {
        const j = mod(this.epoch + k, n);
        this.sum -= this.ring[j]!;
        this.ring[j] = 0;
      }
      this.epoch = epoch;
    }
    return mod(this.epoch, n);
  }
}

function mod(a: number, n: number): number {
  const r = a % n;
  return r < 0 ? r + n : r;
}
