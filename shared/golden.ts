// Golden metrics as agents summarize them for the server: per edge (direction, source service,
// destination service), requests, failures and a latency histogram over fixed bounds. Fixed bounds
// make summaries from any number of agents and periods mergeable by adding counts, at a fixed size
// per edge; quantiles are read from them the way Prometheus' histogram_quantile does.

/**
 * Upper bounds (seconds) of the latency buckets, from sub-millisecond hops on one machine to the
 * default 15 s timeout; a last bucket without bound catches the rest. The agent's request histogram
 * uses the same, so its totals can be summarized without re-bucketing.
 */
export const LATENCY_BOUNDS_SECONDS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Buckets per summary: one per bound and the overflow. */
export const LATENCY_BUCKETS = LATENCY_BOUNDS_SECONDS.length + 1;

export type Direction = 'inbound' | 'outbound';

/** A caller is a service, or a host that registers none ("host/NAME"). */
export const SOURCE_PATTERN = '^(host/)?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$';

export interface EdgeSummary {
  direction: Direction;
  source: string;
  destination: string;
  requests: number;
  /** Responses 5xx and requests that got no response (the proxy's own 502/503/504 included). */
  failures: number;
  /** Counts per latency bucket (not cumulative), LATENCY_BUCKETS long. */
  latency: number[];
}

export function emptyLatency(): number[] {
  return new Array<number>(LATENCY_BUCKETS).fill(0);
}

export function addInto(target: { requests: number; failures: number; latency: number[] }, s: { requests: number; failures: number; latency: readonly number[] }): void {
  target.requests += s.requests;
  target.failures += s.failures;
  for (let i = 0; i < LATENCY_BUCKETS; i++) target.latency[i]! += s.latency[i] ?? 0;
}

/**
 * The q-quantile (0..1) of a bucketed latency, in seconds, interpolating linearly inside the bucket
 * it falls in; null with no observations. Past the last bound it answers that bound, as Prometheus does.
 */
export function quantile(latency: readonly number[], q: number): number | null {
  let total = 0;
  for (const c of latency) total += c;
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < latency.length; i++) {
    const c = latency[i]!;
    if (c > 0 && seen + c >= rank) {
      if (i >= LATENCY_BOUNDS_SECONDS.length) return LATENCY_BOUNDS_SECONDS[LATENCY_BOUNDS_SECONDS.length - 1]!;
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_SECONDS[i - 1]!;
      const upper = LATENCY_BOUNDS_SECONDS[i]!;
      return lower + (upper - lower) * ((rank - seen) / c);
    }
    seen += c;
  }
  return LATENCY_BOUNDS_SECONDS[LATENCY_BOUNDS_SECONDS.length - 1]!;
}

/** What `hostmesh stat` shows for a service or an edge over a window. */
export interface GoldenSignals {
  requests: number;
  failures: number;
  /** Share of requests that did not fail, 0..1; null without requests. */
  successRate: number | null;
  requestsPerSecond: number;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
}

export function goldenOf(agg: { requests: number; failures: number; latency: readonly number[] }, windowSeconds: number): GoldenSignals {
  const ms = (q: number) => {
    const v = quantile(agg.latency, q);
    return v === null ? null : Math.round(v * 1e6) / 1e3;
  };
  return {
    requests: agg.requests,
    failures: agg.failures,
    successRate: agg.requests > 0 ? (agg.requests - agg.failures) / agg.requests : null,
    requestsPerSecond: windowSeconds > 0 ? agg.requests / windowSeconds : 0,
    p50Ms: ms(0.5),
    p95Ms: ms(0.95),
    p99Ms: ms(0.99),
  };
}

/** An edge (caller → callee) as GET /v1/stats reports it. */
export interface EdgeStats extends GoldenSignals {
  source: string;
  destination: string;
}

export interface ServiceStats extends GoldenSignals {
  service: string;
  /** Whose view the figures are: the service's own agents (inbound) or, without those, its callers'. */
  measuredAt: Direction;
}

/** GET /v1/stats. */
export interface StatsView {
  windowSeconds: number;
  services: ServiceStats[];
  edges: EdgeStats[];
}
