// Passive outlier detection per endpoint key, after Envoy's consecutive-5xx detector (what Istio's
// DestinationRule and Kuma's outlier detection configure).
//
// - Every failure of an attempt (5xx, connect failure, reset, per-try timeout: see
//   isFailureOutcome) counts one; any success resets the count.
// - At `consecutiveErrors` in a row the endpoint is ejected at once (Envoy does this kind inline too,
//   not at the sweep) for baseEjection × times ejected, capped at maxEjection (default: the larger of
//   300 s and baseEjection, as Envoy's max_ejection_time).
// - The cap: an ejection happens only if the ejected endpoints, this one included, stay within
//   maxEjectionPercent of the endpoint set: (ejected + 1) × 100 ≤ percent × total. This is Envoy's
//   rule since 1.2x, strict: with 50 % and one endpoint, or three endpoints of which one is already
//   out, nothing more is ejected. `alwaysEjectOne` (Envoy's always_eject_one_host) allows a first
//   ejection past the percent. An endpoint held back by the cap keeps its count, so its next failure
//   tries again (and succeeds once another one came back). The set counted is the whole endpoint set
//   given to setEndpoints, unhealthy endpoints included.
// - Re-admission when the ejection time ends, exactly, not at the next sweep as in Envoy: ejections
//   end lazily (`isEjected` compares with `now`, `sweep` clears state), so no timer is needed.
// - `interval` (Envoy: the sweep period) is used for what the sweep does besides re-admission: each
//   full interval an endpoint spends back in service lowers its ejection multiplier by one, so an
//   endpoint that failed once long ago starts over at baseEjection, while one that flaps gets ever
//   longer ejections.
// - Results reported while an endpoint is ejected (requests still in flight when it was ejected)
//   are ignored: a re-admitted endpoint starts with a clean count.

export interface OutlierOptions {
  consecutiveErrors: number;
  intervalMs: number;
  baseEjectionMs: number;
  maxEjectionPercent: number;
  /** Upper bound of one ejection; default max(300 s, baseEjectionMs). */
  maxEjectionMs: number;
  alwaysEjectOne: boolean;
}

export const OUTLIER_DEFAULTS: Readonly<Omit<OutlierOptions, 'maxEjectionMs'>> = Object.freeze({
  consecutiveErrors: 5,
  intervalMs: 10_000,
  baseEjectionMs: 30_000,
  maxEjectionPercent: 50,
  alwaysEjectOne: false,
});

const DEFAULT_MAX_EJECTION_MS = 300_000;

interface EndpointState {
  consecutive: number;
  ejected: boolean;
  /** End of the current (or last) ejection. */
  until: number;
  /** Ejection multiplier: ejections "in a row", lowered by healthy intervals. */
  times: number;
  /** Mark for setEndpoints' sweep. */
  seen: number;
}

export class OutlierDetector {
  readonly options: Readonly<OutlierOptions>;
  private readonly states = new Map<string, EndpointState>();
  private ejectedNow = 0;
  private generation = 0;
  private versionValue = 0;
  private nextEnd = Infinity;
  private ejectionsCount = 0;
  private overflowCount = 0;

  constructor(options: Partial<OutlierOptions> = {}) {
    const base = options.baseEjectionMs ?? OUTLIER_DEFAULTS.baseEjectionMs;
    const o: OutlierOptions = {
      ...OUTLIER_DEFAULTS,
      maxEjectionMs: Math.max(DEFAULT_MAX_EJECTION_MS, base),
      ...stripUndefined(options),
    };
    if (!Number.isInteger(o.consecutiveErrors) || o.consecutiveErrors < 1) throw new RangeError(`consecutiveErrors must be an integer >= 1, got ${o.consecutiveErrors}`);
    if (!(o.maxEjectionPercent >= 0 && o.maxEjectionPercent <= 100)) throw new RangeError(`maxEjectionPercent must be within 0..100, got ${o.maxEjectionPercent}`);
    if (!(o.baseEjectionMs > 0)) throw new RangeError(`baseEjectionMs must be > 0, got ${o.baseEjectionMs}`);
    if (!(o.intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${o.intervalMs}`);
    if (!(o.maxEjectionMs > 0)) throw new RangeError(`maxEjectionMs must be > 0, got ${o.maxEjectionMs}`);
    this.options = Object.freeze(o);
  }

  /**
   * The whole endpoint set (by key), on each change; not per request. Keys that left are forgotten
   * (an ejected one frees its place under the cap); new keys start clean.
   */
  setEndpoints(keys: readonly string[]): void {
    const gen = ++this.generation;
    for (let i = 0; i < keys.length; i++) this.state(keys[i]!).seen = gen;
    let removedEjected = false;
    for (const [key, s] of this.states) {
      if (s.seen === gen) continue;
      if (s.ejected) {
        this.ejectedNow--;
        removedEjected = true;
      }
      this.states.delete(key);
    }
    if (removedEjected) {
      this.versionValue++;
      this.recomputeNextEnd();
    }
  }

  /** An attempt to this endpoint succeeded: its count of consecutive failures starts over. */
  onSuccess(key: string): void {
    const s = this.states.get(key);
    if (s !== undefined && !s.ejected) s.consecutive = 0;
  }

  /** An attempt to this endpoint failed. Returns true when this failure ejected it. */
  onFailure(key: string, now: number): boolean {
    const s = this.state(key);
    if (s.ejected) {
      if (now < s.until) return false;
      this.sweep(now);
    }
    s.consecutive++;
    if (s.consecutive < this.options.consecutiveErrors) return false;
    // Ejections that ended free their place under the cap before it is checked.
    if (now >= this.nextEnd) this.sweep(now);
    const total = this.states.size;
    const withinCap = (this.ejectedNow + 1) * 100 <= this.options.maxEjectionPercent * total;
    if (!withinCap && !(this.options.alwaysEjectOne && this.ejectedNow === 0)) {
      this.overflowCount++;
      return false;
    }
    if (s.times > 0) {
      // Healthy intervals since the last ejection ended each take one off the multiplier.
      const healthy = Math.floor((now - s.until) / this.options.intervalMs);
      if (healthy > 0) s.times = Math.max(0, s.times - healthy);
    }
    s.times++;
    s.ejected = true;
    s.consecutive = 0;
    s.until = now + Math.min(this.options.baseEjectionMs * s.times, this.options.maxEjectionMs);
    if (s.until < this.nextEnd) this.nextEnd = s.until;
    this.ejectedNow++;
    this.ejectionsCount++;
    this.versionValue++;
    return true;
  }

  /** True while the endpoint is ejected. A pure read: state is cleared by sweep(). */
  isEjected(key: string, now: number): boolean {
    const s = this.states.get(key);
    return s !== undefined && s.ejected && now < s.until;
  }

  /** Re-admit every endpoint whose ejection ended by `now`. Cheap when none did. */
  sweep(now: number): void {
    if (now < this.nextEnd) return;
    let next = Infinity;
    let readmitted = false;
    for (const s of this.states.values()) {
      if (!s.ejected) continue;
      if (s.until <= now) {
        s.ejected = false;
        s.consecutive = 0;
        this.ejectedNow--;
        readmitted = true;
      } else if (s.until < next) {
        next = s.until;
      }
    }
    this.nextEnd = next;
    if (readmitted) this.versionValue++;
  }

  /** Bumped on every ejection and re-admission (EligibleSet rebuilds its list when it moves). */
  get version(): number {
    return this.versionValue;
  }

  /** When the earliest current ejection ends; Infinity when none is ejected. */
  get nextReadmitAt(): number {
    return this.nextEnd;
  }

  /** Endpoints ejected at `now`. */
  ejectedCount(now: number): number {
    this.sweep(now);
    return this.ejectedNow;
  }

  /** Ejections so far (for hostmesh_outlier_ejections_total). */
  get ejections(): number {
    return this.ejectionsCount;
  }

  /** Ejections the max-percent cap prevented (Envoy's ejections_overflow). */
  get overflows(): number {
    return this.overflowCount;
  }

  /** When this endpoint's ejection ends, or null when it is not ejected at `now`. */
  ejectedUntil(key: string, now: number): number | null {
    const s = this.states.get(key);
    return s !== undefined && s.ejected && now < s.until ? s.until : null;
  }

  private state(key: string): EndpointState {
    let s = this.states.get(key);
    if (s === undefined) {
      // Once per endpoint key, normally from setEndpoints.
      s = { consecutive: 0, ejected: false, until: 0, times: 0, seen: this.generation };
      this.states.set(key, s);
    }
    return s;
  }

  private recomputeNextEnd(): void {
    let next = Infinity;
    for (const s of this.states.values()) if (s.ejected && s.until < next) next = s.until;
    this.nextEnd = next;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
