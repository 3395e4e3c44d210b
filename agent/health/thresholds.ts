// Pass/fail thresholds as a pure state machine (Consul's success_before_passing and
// failures_before_critical; HAProxy's rise/fall). No clock, no I/O: feed it results, read the state.
//
//   unknown   --rise successes-->  healthy
//   unknown   --1 failure------->  unhealthy   (a service dead at start is reported at once)
//   healthy   --fall failures--->  unhealthy
//   unhealthy --rise successes-->  healthy
//
// Counters are of *consecutive* results: one result of the other kind resets them.

export type HealthState = 'unknown' | 'healthy' | 'unhealthy';

export class Thresholds {
  private current: HealthState = 'unknown';
  private successes = 0;
  private failures = 0;

  constructor(
    readonly rise: number,
    readonly fall: number,
  ) {
    if (!Number.isInteger(rise) || rise < 1) throw new RangeError(`rise must be an integer >= 1, got ${rise}`);
    if (!Number.isInteger(fall) || fall < 1) throw new RangeError(`fall must be an integer >= 1, got ${fall}`);
  }

  get state(): HealthState {
    return this.current;
  }

  /** 'unknown' is reported as unhealthy: nothing is sent traffic before it proved itself. */
  get healthy(): boolean {
    return this.current === 'healthy';
  }

  /** How many results in a row agree with the last one (successes if it passed, else failures). */
  get consecutive(): number {
    return Math.max(this.successes, this.failures);
  }

  /** Record one probe result; returns true when the state changed. */
  record(ok: boolean): boolean {
    const before = this.current;
    if (ok) {
      this.successes++;
      this.failures = 0;
      if (this.current !== 'healthy' && this.successes >= this.rise) this.current = 'healthy';
    } else {
      this.failures++;
      this.successes = 0;
      if (this.current === 'unknown' || (this.current === 'healthy' && this.failures >= this.fall)) this.current = 'unhealthy';
    }
    return this.current !== before;
  }
}
