// Runs the health checks of one host's services and reports transitions.
//
// Scheduling follows Consul's agent checks: each service's first probe waits a random delay in
// [0, interval) so a host with many services does not probe them all at once, then probes repeat
// every interval (measured start to start). An interval below `minIntervalMs` is raised to it, so a
// typo cannot hot-loop. A service never has two probes in flight: the next one is scheduled only
// when the previous one finished, and if it ran past the interval the next starts right away.
//
// The clock and the random source are injected, so tests drive transitions without sleeping.
import { EventEmitter } from 'node:events';
import type { ResolvedService } from '../../shared/host-config.js';
import { httpProbe } from './http-check.js';
import { describeError, type Probe, type ProbeResult } from './probe.js';
import { tcpProbe } from './tcp-check.js';
import { Thresholds } from './thresholds.js';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export const DEFAULT_MIN_INTERVAL_MS = 100;

export interface HealthMonitorOptions {
  clock?: Clock;
  /** Uniform in [0, 1), like Math.random (the default). */
  random?: () => number;
  /** Intervals below this are raised to it; default 100 ms. */
  minIntervalMs?: number;
  /** How one service is probed; default: the real HTTP/TCP check of its `check.kind`. */
  probe?: Probe;
}

export interface ServiceHealth {
  healthy: boolean;
  /** ISO time of the last finished probe; null before the first one (or for unchecked services). */
  lastCheckAt: string | null;
  /** Why the last probe failed; null when it passed or none ran. */
  lastError: string | null;
  /** Probe results in a row agreeing with the last one. */
  consecutive: number;
}

export interface HealthMonitorEvents {
  /** A checked service changed state: its first verdict, then every healthy <-> unhealthy flip. */
  change: [service: string, healthy: boolean];
}

/** The real probe: the check kind decides between an HTTP GET and a TCP connect. */
export const probeService: Probe = (service) => {
  const check = service.check;
  if (!check) return Promise.resolve({ ok: true, error: null });
  if (check.kind === 'http') {
    const path = check.path ?? '/';
    return httpProbe({ host: service.host, port: service.port, path, expectStatus: check.expectStatus, timeoutMs: check.timeoutMs });
  }
  return tcpProbe({ host: service.host, port: service.port, timeoutMs: check.timeoutMs });
};

interface Watch {
  readonly service: ResolvedService;
  readonly intervalMs: number;
  readonly thresholds: Thresholds;
  timer: unknown;
  hasTimer: boolean;
  inFlight: boolean;
  /** The timer fired while a probe was in flight: probe again as soon as it finishes. */
  due: boolean;
  lastCheckAt: number | null;
  lastError: string | null;
}

export class HealthMonitor extends EventEmitter<HealthMonitorEvents> {
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly probe: Probe;
  private readonly watches = new Map<string, Watch>();
  /** Services without a check: always healthy, never probed. */
  private readonly unchecked = new Set<string>();
  private running = false;

  constructor(services: readonly ResolvedService[], opts: HealthMonitorOptions = {}) {
    super();
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.probe = opts.probe ?? probeService;
    const minIntervalMs = opts.minIntervalMs ?? DEFAULT_MIN_INTERVAL_MS;
    if (!(minIntervalMs > 0)) throw new RangeError(`minIntervalMs must be > 0, got ${minIntervalMs}`);
    for (const service of services) {
      if (this.watches.has(service.name) || this.unchecked.has(service.name)) {
        throw new RangeError(`service "${service.name}" is listed twice`);
      }
      if (!service.check) {
        this.unchecked.add(service.name);
        continue;
      }
      this.watches.set(service.name, {
        service,
        intervalMs: Math.max(service.check.intervalMs, minIntervalMs),
        thresholds: new Thresholds(service.check.rise, service.check.fall),
        timer: undefined,
        hasTimer: false,
        inFlight: false,
        due: false,
        lastCheckAt: null,
        lastError: null,
      });
    }
  }

  /** Schedule every check's first probe after its random delay. Idempotent. */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const w of this.watches.values()) {
      const r = Math.min(Math.max(this.random(), 0), 1);
      this.schedule(w, Math.min(Math.floor(r * w.intervalMs), w.intervalMs - 1));
    }
  }

  /** Cancel all timers. Probes in flight finish on their own deadline; results arriving while stopped are dropped. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    for (const w of this.watches.values()) {
      if (w.hasTimer) this.clock.clearTimeout(w.timer);
      w.hasTimer = false;
      w.timer = undefined;
      w.due = false;
    }
  }

  /** Unchecked services are healthy; checked ones only once proven; unknown names are not. */
  isHealthy(service: string): boolean {
    if (this.unchecked.has(service)) return true;
    return this.watches.get(service)?.thresholds.healthy ?? false;
  }

  snapshot(): Record<string, ServiceHealth> {
    const out: Record<string, ServiceHealth> = {};
    for (const name of this.unchecked) out[name] = { healthy: true, lastCheckAt: null, lastError: null, consecutive: 0 };
    for (const [name, w] of this.watches) {
      out[name] = {
        healthy: w.thresholds.healthy,
        lastCheckAt: w.lastCheckAt === null ? null : new Date(w.lastCheckAt).toISOString(),
        lastError: w.lastError,
        consecutive: w.thresholds.consecutive,
      };
    }
    return out;
  }

  private schedule(w: Watch, delayMs: number): void {
    w.hasTimer = true;
    w.timer = this.clock.setTimeout(() => this.fire(w), delayMs);
  }

  private fire(w: Watch): void {
    w.hasTimer = false;
    w.timer = undefined;
    if (!this.running) return;
    // Only possible after stop() + start() while a probe of the previous run was still out.
    if (w.inFlight) {
      w.due = true;
      return;
    }
    this.run(w);
  }

  private run(w: Watch): void {
    w.inFlight = true;
    w.due = false;
    const startedAt = this.clock.now();
    let pending: Promise<ProbeResult>;
    try {
      pending = this.probe(w.service);
    } catch (err) {
      pending = Promise.resolve({ ok: false, error: describeError(err) });
    }
    pending
      .catch((err: unknown): ProbeResult => ({ ok: false, error: describeError(err) }))
      .then((result) => this.finished(w, startedAt, result));
  }

  private finished(w: Watch, startedAt: number, result: ProbeResult): void {
    w.inFlight = false;
    if (!this.running) return;
    const now = this.clock.now();
    w.lastCheckAt = now;
    w.lastError = result.ok ? null : (result.error ?? 'check failed');
    const changed = w.thresholds.record(result.ok);
    // Schedule before emitting, so a throwing listener cannot stop the checks.
    if (!w.hasTimer) this.schedule(w, w.due ? 0 : Math.max(0, w.intervalMs - (now - startedAt)));
    if (changed) this.emit('change', w.service.name, w.thresholds.healthy);
  }
}
