// Round robin: each endpoint of the eligible list in turn.
//
// The cursor is kept per eligible array (a WeakMap keyed by the array), not one for the balancer:
// with route subsets the proxy alternates between several candidate arrays (v1's endpoints, v2's),
// and one shared cursor would alias (two arrays of two endpoints picked alternately would always get
// index 0 of each). Arrays are rebuilt only when the endpoint set or eligibility changes, so each new
// array costs one small cursor object once; a dropped array takes its cursor with it.
//
// Each cursor starts at a random offset so that many agents started together do not all send their
// first requests to the same endpoint.

import type { Balancer, Random } from './types.js';

interface Cursor {
  next: number;
}

export class RoundRobin<E> implements Balancer<E> {
  readonly kind = 'round-robin' as const;
  private readonly cursors = new WeakMap<readonly E[], Cursor>();

  constructor(private readonly random: Random) {}

  pick(eligible: readonly E[]): E | null {
    const n = eligible.length;
    if (n === 0) return null;
    if (n === 1) return eligible[0]!;
    let cursor = this.cursors.get(eligible);
    if (cursor === undefined) {
      // Once per array, not per request (see above).
      cursor = { next: this.random.below(n) };
      this.cursors.set(eligible, cursor);
    }
    // `% n` also covers an array that was shortened in place since the last pick.
    const i = cursor.next % n;
    cursor.next = i + 1 === n ? 0 : i + 1;
    return eligible[i]!;
  }

  // Round robin keeps no per-endpoint state.
  onStart(_key: string): void {}
  onFinish(_key: string, _latencyMs: number, _ok: boolean): void {}
  onRelease(_key: string): void {}
  setEndpoints(_all: readonly E[]): void {}
}
