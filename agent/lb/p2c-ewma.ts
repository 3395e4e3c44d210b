// Power of two choices over peak-EWMA latency (Mitzenmacher's p2c; the load metric of Finagle's
// "p2cPeakEwma" and of linkerd2-proxy's balancer). Per pick: draw two distinct eligible endpoints at
// random and take the cheaper, where
//
//   cost = latency estimate (ms, peak EWMA, see ewma.ts) × (requests in flight + 1)
//
// so an endpoint is avoided both when it answers slowly and when it has a queue. Two random choices
// instead of the global minimum keep a crowd of agents with the same view from all piling onto the
// one endpoint that looks best (herding), and cost O(1) per pick.
//
// Unknown endpoints start at `defaultRttMs` (linkerd's 30 ms: pessimistic for a LAN, so a new
// instance is not flooded before it proved itself), fading like any estimate so it is tried soon even
// at low load. While an endpoint has no sample yet *and* already has a request in flight, its latency
// counts as `unprovenPenaltyMs` (Finagle's penalty): one probe at a time until it answers, so a
// black hole is not fed a burst.
//
// Failures feed the estimate too, but never lower it: a fast error (a 503 in 1 ms) must not make an
// endpoint look fast and attract traffic; outlier detection is what takes failing endpoints out.

import { PeakEwma } from './ewma.js';
import type { Balancer, Clock, KeyOf, Random } from './types.js';

export interface P2cEwmaOptions {
  /** Decay time constant of the latency estimate. */
  decayMs: number;
  /** The estimate an endpoint starts with before its first answer. */
  defaultRttMs: number;
  /** Latency counted for an unanswered endpoint that already has requests in flight. */
  unprovenPenaltyMs: number;
}

export const P2C_EWMA_DEFAULTS: Readonly<P2cEwmaOptions> = Object.freeze({
  decayMs: 10_000,
  defaultRttMs: 30,
  unprovenPenaltyMs: 1_000_000,
});

interface State {
  inflight: number;
  readonly ewma: PeakEwma;
  /** Mark for setEndpoints' sweep. */
  seen: number;
}

export class P2cEwma<E> implements Balancer<E> {
  readonly kind = 'p2c-ewma' as const;
  private readonly states = new Map<string, State>();
  private readonly opts: Readonly<P2cEwmaOptions>;
  private generation = 0;

  constructor(
    private readonly keyOf: KeyOf<E>,
    private readonly clock: Clock,
    private readonly random: Random,
    options: Partial<P2cEwmaOptions> = {},
  ) {
    this.opts = { ...P2C_EWMA_DEFAULTS, ...options };
  }

  pick(eligible: readonly E[]): E | null {
    const n = eligible.length;
    if (n === 0) return null;
    if (n === 1) return eligible[0]!;
    // Two distinct indices without building a candidate array: draw j from n-1 and skip over i.
    const i = this.random.below(n);
    let j = this.random.below(n - 1);
    if (j >= i) j++;
    const a = eligible[i]!;
    const b = eligible[j]!;
    const now = this.clock.now();
    // Ties go to `a`, itself a uniform random choice.
    return this.costOf(this.keyOf(b), now) < this.costOf(this.keyOf(a), now) ? b : a;
  }

  onStart(key: string): void {
    const s = this.states.get(key);
    // The clock is read only for an unknown key: a double returned from a call V8 does not inline
    // is boxed, so the common path avoids the call.
    if (s !== undefined) s.inflight++;
    else this.state(key, this.clock.now()).inflight++;
  }

  onRelease(key: string): void {
    const s = this.states.get(key);
    if (s !== undefined && s.inflight > 0) s.inflight--;
  }

  onFinish(key: string, latencyMs: number, ok: boolean): void {
    const s = this.states.get(key);
    // Missing: the endpoint left the set while the request was in flight.
    if (s === undefined) return;
    if (s.inflight > 0) s.inflight--;
    const now = this.clock.now();
    let rtt = latencyMs;
    if (!ok) {
      const current = s.ewma.value(now);
      if (current > rtt) rtt = current;
    }
    s.ewma.observe(rtt, now);
  }

  setEndpoints(all: readonly E[]): void {
    const gen = ++this.generation;
    const now = this.clock.now();
    for (let i = 0; i < all.length; i++) this.state(this.keyOf(all[i]!), now).seen = gen;
    for (const [key, s] of this.states) if (s.seen !== gen) this.states.delete(key);
  }

  /** The cost p2c compares for this key at `now` (for metrics, debugging and tests). */
  costOf(key: string, now: number): number {
    const s = this.state(key, now);
    const rtt = s.inflight > 0 && !s.ewma.sampled ? this.opts.unprovenPenaltyMs : s.ewma.value(now);
    return rtt * (s.inflight + 1);
  }

  /** The latency estimate (ms) for this key at `now`, or null when the key is unknown. */
  estimateOf(key: string, now: number): number | null {
    const s = this.states.get(key);
    return s === undefined ? null : s.ewma.value(now);
  }

  inflightOf(key: string): number {
    return this.states.get(key)?.inflight ?? 0;
  }

  private state(key: string, now: number): State {
    let s = this.states.get(key);
    if (s === undefined) {
      // Once per endpoint key (normally at setEndpoints), never again per request.
      s = { inflight: 0, ewma: new PeakEwma(this.opts.decayMs, this.opts.defaultRttMs, now), seen: this.generation };
      this.states.set(key, s);
    }
    return s;
  }
}
