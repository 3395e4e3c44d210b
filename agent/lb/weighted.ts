// Weighted subsets: a Route rule's destinations, e.g. [{subset: {version: v1}, weight: 90},
// {subset: {version: v2}, weight: 10}]. Per request, choose a destination at random in proportion to
// its weight, and hand the balancer the eligible endpoints whose labels contain the subset's.
//
// Independent random draws (not a deterministic interleave) so that many agents each sending a few
// requests still add up to the split; over 2000 requests a 90/10 split stays within about ±2 %
// (3 standard deviations of a binomial) of its target.
//
// Fallback: a destination with no eligible endpoint is skipped, and the draw is made among the
// others in proportion to their weights: its share goes to the rest rather than failing (a canary
// subset whose one instance died must not turn 10 % of requests into 503s). Destinations of weight 0
// are never chosen, not even as a fallback: an operator who set 0 meant "send nothing there" (a
// drained or broken version). With no destination left the answer is null, and the proxy says 503.
//
// The per-destination endpoint lists are built when the eligible array changes (EligibleSet keeps
// it stable between changes), not per request; they are stable arrays too, which round-robin needs.

import { sameElements } from './arrays.js';
import type { Random } from './types.js';

export type Labels = Readonly<Record<string, string>>;

export interface WeightedDestination {
  readonly subset?: Labels | undefined;
  readonly weight: number;
}

/** True when `labels` contain every key of `subset` with the same value (an empty subset matches all). */
export function matchesSubset(labels: Labels, subset: Labels | undefined): boolean {
  if (subset === undefined) return true;
  for (const k in subset) {
    if (!Object.prototype.hasOwnProperty.call(subset, k)) continue;
    if (!Object.prototype.hasOwnProperty.call(labels, k) || labels[k] !== subset[k]) return false;
  }
  return true;
}

const EMPTY: readonly never[] = Object.freeze([]);

export class WeightedSubsets<E> {
  private readonly subsets: readonly (Labels | undefined)[];
  private readonly weights: Float64Array;
  private readonly candidates: (readonly E[])[];
  /** Cumulative weights of destinations that have endpoints (0 for those that have none). */
  private readonly cumulative: Float64Array;
  private total = 0;
  /** The only destination with weight and endpoints, or -1 when there are several (or none). */
  private single = -1;
  private source: readonly E[] | null = null;
  private lastChoice = -1;

  constructor(
    destinations: readonly WeightedDestination[],
    private readonly labelsOf: (e: E) => Labels,
    private readonly random: Random,
  ) {
    const n = destinations.length;
    this.subsets = destinations.map((d) => (d.subset && Object.keys(d.subset).length > 0 ? d.subset : undefined));
    this.weights = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const w = destinations[i]!.weight;
      // Integers (as the Route schema has them), so the draw is an integer below the total.
      if (!Number.isInteger(w) || w < 0) throw new RangeError(`destination ${i}: weight must be an integer >= 0, got ${w}`);
      this.weights[i] = w;
    }
    this.candidates = new Array<readonly E[]>(n).fill(EMPTY);
    this.cumulative = new Float64Array(n);
  }

  /**
   * The eligible endpoints of a destination chosen by weight among those that have any, or null
   * when none has. `eligible` should be the stable array from EligibleSet.
   */
  select(eligible: readonly E[]): readonly E[] | null {
    if (eligible !== this.source) this.rebuild(eligible);
    if (this.single >= 0) {
      this.lastChoice = this.single;
      return this.candidates[this.single]!;
    }
    if (this.total <= 0) {
      this.lastChoice = -1;
      return null;
    }
    const r = this.random.below(this.total);
    const cum = this.cumulative;
    const last = cum.length - 1;
    let i = 0;
    // r < total = cum[last], so this stops at a destination with weight; ≤ 16 destinations per rule.
    while (i < last && r >= cum[i]!) i++;
    this.lastChoice = i;
    return this.candidates[i]!;
  }

  /** Index of the destination the last select() chose, -1 if it found none (for metrics). */
  get chosen(): number {
    return this.lastChoice;
  }

  /** The candidates of destination `i` for the current eligible set (tests, debugging). */
  candidatesOf(i: number): readonly E[] {
    return this.candidates[i] ?? EMPTY;
  }

  private rebuild(eligible: readonly E[]): void {
    this.source = eligible;
    let total = 0;
    let withWeight = 0;
    let only = -1;
    for (let d = 0; d < this.subsets.length; d++) {
      const subset = this.subsets[d];
      let list: readonly E[];
      if (subset === undefined) {
        // No subset: the eligible array itself, so its round-robin cursor is shared, not reset.
        list = eligible;
      } else {
        const matched: E[] = [];
        for (let i = 0; i < eligible.length; i++) {
          const e = eligible[i]!;
          if (matchesSubset(this.labelsOf(e), subset)) matched.push(e);
        }
        // Reuse the previous array when nothing changed for this subset (keeps its cursor too).
        const prev = this.candidates[d]!;
        list = sameElements(matched, prev) ? prev : matched.length === 0 ? EMPTY : matched;
      }
      this.candidates[d] = list;
      const w = list.length > 0 ? this.weights[d]! : 0;
      if (w > 0) {
        withWeight++;
        only = d;
      }
      total += w;
      this.cumulative[d] = total;
    }
    this.total = total;
    this.single = withWeight === 1 ? only : -1;
  }
}
