// The eligible endpoints (healthy and not ejected), kept as one cached array so that per request
// the balancer gets a ready list and nobody filters. The array is rebuilt only when something it
// depends on changed: a new endpoint set (config push, health report), an ejection or re-admission
// (the ejection view's version moves), or the time the next ejection ends. Ejections end lazily,
// at the first request after their end, so no timer is needed.
//
// No "panic mode" (Envoy routes to all hosts when too few are healthy): with no eligible endpoint
// the list is empty and the proxy answers 503 at once. Outlier ejection alone cannot empty it,
// because the detector never ejects more than its max-ejection percent.

import { sameElements } from './arrays.js';
import type { KeyOf } from './types.js';

/** What the set needs from outlier detection (resilience/outlier.ts implements it). */
export interface EjectionView {
  /** Bumped on every ejection and re-admission. */
  readonly version: number;
  /** When the earliest current ejection ends; Infinity when none is ejected. */
  readonly nextReadmitAt: number;
  /** Re-admit every endpoint whose ejection has ended by `now`. */
  sweep(now: number): void;
  isEjected(key: string, now: number): boolean;
}

export interface EligibilityAccess<E> {
  keyOf: KeyOf<E>;
  isHealthy(e: E): boolean;
}

const EMPTY: readonly never[] = Object.freeze([]);

export class EligibleSet<E> {
  private endpoints: readonly E[] = EMPTY;
  private eligible: readonly E[] = EMPTY;
  private dirty = true;
  private seenVersion = -1;

  constructor(
    private readonly access: EligibilityAccess<E>,
    private readonly ejections: EjectionView | null = null,
  ) {}

  /** The whole endpoint set, unhealthy ones included. Not copied: do not mutate it afterwards. */
  setEndpoints(all: readonly E[]): void {
    this.endpoints = all;
    this.dirty = true;
  }

  /** Force a rebuild at the next `current()`, e.g. after health flags were changed in place. */
  invalidate(): void {
    this.dirty = true;
  }

  get all(): readonly E[] {
    return this.endpoints;
  }

  /**
   * The eligible endpoints at `now`. The same array is returned until something changed, which is
   * what lets round-robin keep its cursor and the subset splitter its per-subset lists.
   */
  current(now: number): readonly E[] {
    const ej = this.ejections;
    if (ej !== null) {
      if (now >= ej.nextReadmitAt) ej.sweep(now);
      if (ej.version !== this.seenVersion) this.dirty = true;
    }
    if (this.dirty) this.rebuild(now);
    return this.eligible;
  }

  private rebuild(now: number): void {
    const ej = this.ejections;
    const all = this.endpoints;
    const next: E[] = [];
    for (let i = 0; i < all.length; i++) {
      const e = all[i]!;
      if (!this.access.isHealthy(e)) continue;
      if (ej !== null && ej.isEjected(this.access.keyOf(e), now)) continue;
      next.push(e);
    }
    this.dirty = false;
    if (ej !== null) this.seenVersion = ej.version;
    // Same members in the same order: keep the old array, so downstream caches stay valid.
    if (!sameElements(next, this.eligible)) this.eligible = next.length === 0 ? EMPTY : next;
  }
}
