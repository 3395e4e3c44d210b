// Load balancing: one balancer per upstream service, chosen by its TrafficPolicy.
//
// Per request the proxy does (all synchronous, none of it allocating: with node --trace-gc, 10^7
// calls of each of current, select, and pick + onStart + onFinish of every balancer ran with no
// scavenge, given a seeded or system Random and the coarse clock):
//
//   const now = coarseClock.now();
//   const eligible = eligibleSet.current(now);            // healthy, not ejected; cached array
//   const candidates = rule.subsets.select(eligible);     // weighted destination, with fallback
//   const ep = candidates && balancer.pick(candidates);   // null → 503 "no healthy endpoint"
//   balancer.onStart(key); … balancer.onFinish(key, latencyMs, ok);
//
// and on each endpoint-set change: eligibleSet.setEndpoints(all); balancer.setEndpoints(all);
// outlier.setEndpoints(keys).

import { coarseClock } from './coarse-clock.js';
import { LeastRequest } from './least-request.js';
import { P2cEwma, type P2cEwmaOptions } from './p2c-ewma.js';
import { systemRandom } from './random.js';
import { RoundRobin } from './round-robin.js';
import { type Balancer, type BalancerKind, type Clock, type KeyOf, type Random } from './types.js';

export interface BalancerDeps<E> {
  /** Default: the shared 10 ms coarse clock (per-request reads cost a field load, see coarse-clock.ts). */
  clock?: Clock;
  random?: Random;
  /** The endpoint's stable key; default its `host`. */
  keyOf?: KeyOf<E>;
  p2cEwma?: Partial<P2cEwmaOptions>;
}

/**
 * The balancer a TrafficPolicy without `loadBalancer` gets: p2c-ewma, as in Linkerd. It routes around
 * slow and busy instances, which round robin cannot see, at O(1) per pick.
 */
export const DEFAULT_BALANCER: BalancerKind = 'p2c-ewma';

export function createBalancer<E extends { readonly host: string }>(kind: BalancerKind, deps?: BalancerDeps<E>): Balancer<E>;
export function createBalancer<E>(kind: BalancerKind, deps: BalancerDeps<E> & { keyOf: KeyOf<E> }): Balancer<E>;
export function createBalancer<E>(kind: BalancerKind, deps: BalancerDeps<E> = {}): Balancer<E> {
  const random = deps.random ?? systemRandom;
  const clock = deps.clock ?? coarseClock;
  const keyOf = deps.keyOf ?? (hostKey as unknown as KeyOf<E>);
  switch (kind) {
    case 'round-robin':
      return new RoundRobin<E>(random);
    case 'least-request':
      return new LeastRequest<E>(keyOf, random);
    case 'p2c-ewma':
      return new P2cEwma<E>(keyOf, clock, random, deps.p2cEwma);
    default: {
      const never: never = kind;
      throw new RangeError(`unknown load balancer "${String(never)}"`);
    }
  }
}

function hostKey(e: { readonly host: string }): string {
  return e.host;
}

export { RoundRobin } from './round-robin.js';
export { LeastRequest } from './least-request.js';
export { P2cEwma, P2C_EWMA_DEFAULTS, type P2cEwmaOptions } from './p2c-ewma.js';
export { PeakEwma } from './ewma.js';
export { CoarseClock, coarseClock } from './coarse-clock.js';
export { EligibleSet, type EjectionView, type EligibilityAccess } from './eligible.js';
export { WeightedSubsets, matchesSubset, type WeightedDestination, type Labels } from './weighted.js';
export { randomFrom, seededRandom, systemRandom } from './random.js';
export {
  BALANCER_KINDS,
  endpointHealthy,
  endpointKey,
  endpointLabels,
  monotonicClock,
  type Balancer,
  type BalancerKind,
  type Clock,
  type EndpointLike,
  type KeyOf,
  type Random,
} from './types.js';
