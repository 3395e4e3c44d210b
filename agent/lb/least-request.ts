// Least request: the eligible endpoint with the fewest requests in flight from this agent, ties
// broken uniformly at random (reservoir sampling over the tied ones, so no array of candidates is
// built). A full scan is O(n) per pick; n is the instance count of one service, small on VMs. Envoy
// samples two (p2c) instead, which scales better but is not "fewest": p2c-ewma covers that ground.

import type { Balancer, KeyOf, Random } from './types.js';

interface Load {
  inflight: number;
  /** Mark for setEndpoints' sweep. */
  seen: number;
}

export class LeastRequest<E> implements Balancer<E> {
  readonly kind = 'least-request' as const;
  private readonly loads = new Map<string, Load>();
  private generation = 0;

  constructor(
    private readonly keyOf: KeyOf<E>,
    private readonly random: Random,
  ) {}

  pick(eligible: readonly E[]): E | null {
    const n = eligible.length;
    if (n === 0) return null;
    if (n === 1) return eligible[0]!;
    let best: E = eligible[0]!;
    let bestLoad = this.inflight(best);
    let ties = 1;
    // Indexed loop, not for..of: no iterator object on the hot path.
    for (let i = 1; i < n; i++) {
      const e = eligible[i]!;
      const load = this.inflight(e);
      if (load < bestLoad) {
        best = e;
        bestLoad = load;
        ties = 1;
      } else if (load === bestLoad) {
        // Keep the i-th tied endpoint with probability 1/ties: uniform over all ties.
        ties++;
        if (this.random.below(ties) === 0) best = e;
      }
    }
    return best;
  }

  onStart(key: string): void {
    const load = this.loads.get(key);
    if (load !== undefined) load.inflight++;
    else this.loads.set(key, { inflight: 1, seen: this.generation });
  }

  onFinish(key: string, _latencyMs: number, _ok: boolean): void {
    this.onRelease(key);
  }

  onRelease(key: string): void {
    const load = this.loads.get(key);
    // Missing: the endpoint left the set while the request was in flight; nothing to count down.
    if (load !== undefined && load.inflight > 0) load.inflight--;
  }

  setEndpoints(all: readonly E[]): void {
    const gen = ++this.generation;
    for (let i = 0; i < all.length; i++) {
      const key = this.keyOf(all[i]!);
      const load = this.loads.get(key);
      if (load !== undefined) load.seen = gen;
      else this.loads.set(key, { inflight: 0, seen: gen });
    }
    for (const [key, load] of this.loads) if (load.seen !== gen) this.loads.delete(key);
  }

  /** Requests in flight to the endpoint with this key (0 when unknown). */
  inflightOf(key: string): number {
    return this.loads.get(key)?.inflight ?? 0;
  }

  private inflight(e: E): number {
    const load = this.loads.get(this.keyOf(e));
    return load === undefined ? 0 : load.inflight;
  }
}
