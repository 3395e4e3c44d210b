// A clock cheap enough to read on every request. performance.now() costs ~90 ns on Node 20 and
// returns a freshly boxed double; p2c-ewma reads the time twice per request (pick, finish). This one
// is a field read: the time is taken once, then reused until a timer marks it stale.
//
// Coarse on purpose (default 10 ms, later under event-loop lag): right for latency-estimate decay
// (tau 10 s), retry-budget buckets (1 s) and ejections (30 s); wrong for measuring a request's
// latency, which the proxy takes from performance.now() at both ends. The timer is armed lazily on
// the first read after it fired and is unref'd, so an idle agent has no wake-ups, and a busy one one
// timer per resolution period, not per request. Within one synchronous run the time does not move:
// tests use a fake clock instead.
//
// The value is whole milliseconds from process start, a small integer (V8 Smi) for the first 24 days,
// so passing it around does not box a double either.

import type { Clock } from './types.js';

export class CoarseClock implements Clock {
  private t = 0;
  private stale = true;
  // Made once: the timer callback is this bound function, not a closure per refresh.
  private readonly expire = (): void => {
    this.stale = true;
  };

  constructor(readonly resolutionMs = 10) {
    if (!(resolutionMs > 0)) throw new RangeError(`resolutionMs must be > 0, got ${resolutionMs}`);
  }

  now(): number {
    if (this.stale) {
      this.t = Math.round(performance.now());
      this.stale = false;
      setTimeout(this.expire, this.resolutionMs).unref();
    }
    return this.t;
  }
}

/** The agent's shared coarse clock (10 ms), the default of createBalancer. */
export const coarseClock: Clock = new CoarseClock(10);
