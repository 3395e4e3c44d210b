// Peak EWMA of latency, the estimator behind p2c-ewma (Finagle's PeakEwma, tower's RttEstimate in
// linkerd2-proxy). Three properties, each for a reason:
//
// - Time-weighted: a sample that arrives `dt` after the previous one has weight 1 - e^(-dt/tau), so
//   the estimate forgets at the same pace whatever the request rate; tau is the decay time constant
//   (~10 s: at a steady latency the estimate covers ~63 % of a change in tau, ~95 % in 3 tau).
// - Peak-sensitive: a sample above the estimate replaces it at once. A slow endpoint is avoided from
//   its first slow answer; coming back down takes time, as the average forgets the peak.
// - Fading when unsampled: the value read decays toward 0 with the age of the last sample
//   (`value(now)`), which is what brings traffic back to an endpoint the balancer stopped choosing:
//   without it a once-slow endpoint that is never picked would never be measured again. A fresh
//   sample replaces that optimism with a measurement.
//
// The initial estimate (before any answer) is a guess; the first sample replaces it whatever its
// value. Reading does not mutate (tower's load() does): how often p2c *considers* an endpoint must
// not change its estimate, only its answers may.

export class PeakEwma {
  // Numeric initializers, not bare declarations: under ES2022 class-field semantics a declared field
  // starts as `undefined`, V8 then gives it the generic representation and every double stored
  // into it afterwards is a fresh heap allocation. Starting as a number keeps the field unboxed.
  private estimate = 0;
  private stamp = 0;
  private samples = 0;

  /**
   * @param tauMs decay time constant in ms
   * @param initialMs the estimate before any sample (what an unknown endpoint is assumed to cost)
   * @param now clock reading at creation: the initial estimate fades from then on like a sample would
   */
  constructor(
    readonly tauMs: number,
    initialMs: number,
    now: number,
  ) {
    if (!(tauMs > 0)) throw new RangeError(`tauMs must be > 0, got ${tauMs}`);
    this.estimate = Math.max(0, initialMs);
    this.stamp = now;
  }

  /** Record one latency sample (ms) measured at `now`. */
  observe(rttMs: number, now: number): void {
    const rtt = rttMs > 0 ? rttMs : 0;
    // The first measurement replaces the initial guess outright: the guess is not data to average.
    if (rtt > this.estimate || this.samples === 0) {
      this.estimate = rtt;
    } else {
      // A clock that went backwards counts as no time elapsed: the sample then has no weight.
      const elapsed = now > this.stamp ? now - this.stamp : 0;
      const w = Math.exp(-elapsed / this.tauMs);
      this.estimate = this.estimate * w + rtt * (1 - w);
    }
    if (now > this.stamp) this.stamp = now;
    this.samples++;
  }

  /** The estimate at `now`: the last computed value faded by the age of the last sample. */
  value(now: number): number {
    const age = now - this.stamp;
    return age > 0 ? this.estimate * Math.exp(-age / this.tauMs) : this.estimate;
  }

  /** True once at least one real sample was recorded (the initial estimate is a guess). */
  get sampled(): boolean {
    return this.samples > 0;
  }

  get sampleCount(): number {
    return this.samples;
  }
}
