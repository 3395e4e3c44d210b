// A clock that only moves when the test says so.
import type { Clock, Timer } from '../../agent/clock.js';

export class FakeClock implements Clock {
  #now: number;
  #timers: Array<{ at: number; fn: () => void; seq: number }> = [];
  #seq = 0;

  constructor(start = Date.now()) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(ms: number, fn: () => void): Timer {
    const t = { at: this.#now + Math.max(0, ms), fn, seq: this.#seq++ };
    this.#timers.push(t);
    return { cancel: () => void (this.#timers = this.#timers.filter((x) => x !== t)) };
  }

  /** Move forward, firing due timers in time order (timers they set are honoured too). */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = Math.max(this.#now, due.at);
      due.fn();
    }
    this.#now = end;
  }

  advanceTo(at: number): void {
    this.advance(Math.max(0, at - this.#now));
  }

  get pending(): number {
    return this.#timers.length;
  }
}
