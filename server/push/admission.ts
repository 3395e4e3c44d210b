// Admission of agent connections in a reconnect storm. After a server restart every agent comes
// back within seconds; full-jitter backoff alone cannot spread them when the server was away only
// briefly. So the server admits at most `rate` new agents per second and gives each one it turns
// away a reserved second to come back in (503 + Retry-After), which the agent honours: arrivals
// stay under the rate, and every agent knows exactly when it will get in.
export class AdmissionSchedule {
  private readonly counts = new Map<number, number>();
  private readonly reserved = new Map<string, number>();

  constructor(private readonly rate: () => number) {}

  /** 0: come in now; n > 0: come back in n seconds (that second is reserved for `host`). */
  admit(host: string, nowMs: number): number {
    const now = Math.floor(nowMs / 1000);
    this.prune(now);
    const slot = this.reserved.get(host);
    if (slot !== undefined && slot <= now) {
      this.reserved.delete(host);
      return 0;
    }
    if (slot !== undefined) return slot - now;
    const r = Math.max(1, this.rate());
    for (let s = now; ; s++) {
      const c = this.counts.get(s) ?? 0;
      if (c >= r) continue;
      this.counts.set(s, c + 1);
      if (s === now) return 0;
      this.reserved.set(host, s);
      return s - now;
    }
  }

  private prune(now: number): void {
    for (const s of this.counts.keys()) if (s < now) this.counts.delete(s);
    // A reservation not used within a minute was abandoned (the agent went away).
    for (const [h, s] of this.reserved) if (s < now - 60) this.reserved.delete(h);
  }
}
