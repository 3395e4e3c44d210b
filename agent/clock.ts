// Time behind a small interface, so renewal schedules are tested by moving a fake clock instead of
// sleeping. Only what the agent needs: the current time and a cancellable one-shot timer.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Run `fn` once after `ms`. Timers never keep the process alive on their own. */
  setTimer(ms: number, fn: () => void): Timer;
}

// setTimeout fires at once for delays above 2^31-1 ms (~24.8 days); a 90-day cert would renew
// immediately. Callers re-check what is due when a timer fires, so clamping is enough.
const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.min(Math.max(0, ms), MAX_TIMER_MS));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

/** Resolves after `ms`, or rejects with an AbortError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortError(): Error {
  return Object.assign(new Error('stopped'), { name: 'AbortError' });
}

export function isAbortError(e: unknown): boolean {
  return e instanceof Error && e.name === 'AbortError';
}
