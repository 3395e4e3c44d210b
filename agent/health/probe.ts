// The outcome of one health probe, shared by the http and tcp checks and the monitor.
// Probes never throw: every failure (refused, reset, timeout, wrong status) is a result.
import type { ResolvedService } from '../../shared/host-config.js';

export interface ProbeResult {
  ok: boolean;
  /** Why the probe failed, short and human-readable; null when it passed. */
  error: string | null;
}

/** Runs one probe of a service; injectable so the monitor can be tested without sockets. */
export type Probe = (service: ResolvedService) => Promise<ProbeResult>;

/** A short message for anything thrown or emitted as an error. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}
