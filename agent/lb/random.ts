// Random sources behind the `Random` interface: a fast generator seeded once from Math.random in
// production, the same generator with a chosen seed in tests and simulations (a failing run can be
// replayed), and an adapter for any `() => number` in [0, 1).
//
// Why not Math.random directly: a double returned through a call V8 does not inline (a balancer
// calling `this.random()`) is boxed in a fresh HeapNumber, one allocation per draw. `below(n)` returns
// a small integer, a Smi, and the state is kept as an int32 field, so a draw allocates nothing.

import type { Random } from './types.js';

/** mulberry32: 32 bits of state, good enough statistics for load balancing; not for security. */
class Mulberry32 implements Random {
  /** int32, never a double, and initialised as a number (see ewma.ts): stored unboxed. */
  private state = 0;

  constructor(seed: number) {
    this.state = seed | 0;
  }

  below(n: number): number {
    // Inlined generator step (not a helper returning a uint32, which could be boxed above 2^31).
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  }
}

/** Deterministic: the same seed gives the same sequence. */
export function seededRandom(seed: number): Random {
  return new Mulberry32(seed);
}

/** Production source: seeded once at load. */
export const systemRandom: Random = new Mulberry32((Math.random() * 4294967296) | 0);

/** Adapt a [0, 1) function such as Math.random (which allocates per draw when not inlined). */
export function randomFrom(fn: () => number): Random {
  return { below: (n) => Math.floor(fn() * n) };
}
