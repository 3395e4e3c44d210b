// Golden-metric summaries for the server: every interval, what each edge saw since the last one
// (requests, failures, latency buckets), read from the per-edge totals the proxy keeps for
// Prometheus. Those are kept with `metrics.traffic: false` too (which only takes them off /metrics):
// `hostmesh stat` is the view for operators without Prometheus. Nothing is added to the
// per-request path; a summary costs one pass over the edges.
import { LATENCY_BOUNDS_SECONDS, LATENCY_BUCKETS, type Direction, type EdgeSummary } from '../../shared/golden.js';
import type { Logger } from '../../shared/log.js';
import type { StatsMsg } from '../../shared/protocol.js';

/** What the summarizer reads of an edge: the proxy's running totals (agent/metrics/request-metrics.ts). */
export interface EdgeTotals {
  readonly direction: Direction;
  readonly source: string;
  readonly destination: string;
  /** Non-cumulative bucket counts per status class (1xx…5xx), each class `bounds + 1` long. */
  readonly buckets: ArrayLike<number>;
  /** Requests per status class. */
  readonly counts: ArrayLike<number>;
}

const CLASS_5XX = 4;

interface Previous {
  requests: number;
  failures: number;
  latency: number[];
}

export class StatsSummarizer {
  private readonly previous = new WeakMap<EdgeTotals, Previous>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly edges: () => Iterable<EdgeTotals>,
    /** The bucket bounds the totals use; they must match the shared ones for summaries to merge. */
    bounds: readonly number[],
    private readonly send: (msg: StatsMsg) => boolean,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {
    if (bounds.length !== LATENCY_BOUNDS_SECONDS.length || bounds.some((b, i) => b !== LATENCY_BOUNDS_SECONDS[i])) {
      throw new Error('the proxy latency buckets differ from shared/golden.ts LATENCY_BOUNDS_SECONDS; summaries would not merge');
    }
  }

  start(): void {
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** What changed since the last call, per edge with traffic; totals move forward even if nothing is sent. */
  take(): EdgeSummary[] {
    const out: EdgeSummary[] = [];
    for (const e of this.edges()) {
      let requests = 0;
      for (let c = 0; c < e.counts.length; c++) requests += e.counts[c]!;
      const failures = e.counts[CLASS_5XX] ?? 0;
      const prev = this.previous.get(e);
      if (requests === (prev?.requests ?? 0)) continue;
      const latency = new Array<number>(LATENCY_BUCKETS).fill(0);
      const classes = e.counts.length;
      for (let c = 0; c < classes; c++) for (let b = 0; b < LATENCY_BUCKETS; b++) latency[b]! += e.buckets[c * LATENCY_BUCKETS + b] ?? 0;
      const delta: EdgeSummary = {
        direction: e.direction,
        source: e.source,
        destination: e.destination,
        requests: requests - (prev?.requests ?? 0),
        failures: failures - (prev?.failures ?? 0),
        latency: latency.map((v, i) => v - (prev?.latency[i] ?? 0)),
      };
      this.previous.set(e, { requests, failures, latency });
      out.push(delta);
    }
    return out;
  }

  /**
   * Send what changed. While the server is away the summary is dropped: the server keeps only a few
   * minutes anyway, and Prometheus scrapes of the agent still have the totals.
   */
  flush(): void {
    const edges = this.take();
    if (edges.length === 0) return;
    const sent = this.send({ type: 'stats', at: new Date().toISOString(), intervalSeconds: this.intervalMs / 1000, edges: edges.slice(0, 10_000) });
    if (!sent) this.log.debug({ edges: edges.length }, 'stats summary dropped: not connected');
  }
}
