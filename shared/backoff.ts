// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff and Jitter"):
// sleep = random(0, min(cap, base * 2^attempt)). Full jitter spreads a crowd of agents that lost the
// same server over the whole window, so a restart is not met by one synchronized burst.

export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly opts: BackoffOptions) {
    this.random = opts.random ?? Math.random;
  }

  /** The delay before the next try; each call widens the window until the cap. */
  next(): number {
    const ceiling = Math.min(this.opts.capMs, this.opts.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(this.random() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
