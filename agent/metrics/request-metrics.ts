// Request counts and latency histograms of the L7 proxy, kept per edge (direction, source service,
// destination service) in plain numbers and arrays, and handed to prom-client only when scraped.
// They are kept whether or not Prometheus sees them: the golden-metric summaries the agent sends
// the server (agent/stats/summarizer.ts, `hostmesh stat`) are read from the same edges, and
// `metrics.traffic: false` only leaves them out of /metrics.
//
// Why not prom-client's inc()/observe() per request: each call builds a label-hash string and, for
// histograms, a closure: about 1 µs and some garbage per request per agent (measured with 4 labels).
// A session looks its edge up once per connection; a request then costs a Map update, a bucket scan
// and three adds, with nothing allocated.
import { LATENCY_BOUNDS_SECONDS } from '../../shared/golden.js';
import { Counter, Histogram, type MetricType, type MetricObjectWithValues, type MetricValueWithName, type Registry } from 'prom-client';

/** Upper bounds in seconds: the same as the golden-metric summaries the server merges (shared/golden.ts). */
export const DURATION_BUCKETS: readonly number[] = LATENCY_BOUNDS_SECONDS;
const NB = DURATION_BUCKETS.length;
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export type Direction = 'inbound' | 'outbound';

/** Status code class index 0–4; codes outside 100–599 (never produced by the parser) fold into 5xx. */
function classOf(status: number): number {
  const c = ((status / 100) | 0) - 1;
  return c >= 0 && c <= 4 ? c : 4;
}

/** What one edge has seen. Read by the scrape, and by anything else that summarises traffic. */
export class EdgeStats {
  /** Requests by response status code. */
  readonly byCode = new Map<number, number>();
  /** Non-cumulative bucket counts per class: [class * (NB + 1) + bucket], the last bucket being +Inf. */
  readonly buckets = new Float64Array(CLASSES.length * (NB + 1));
  readonly sums = new Float64Array(CLASSES.length);
  readonly counts = new Float64Array(CLASSES.length);

  constructor(
    readonly direction: Direction,
    readonly source: string,
    readonly destination: string,
  ) {}

  /** One request answered with `status` after `seconds` (until its response head). */
  record(status: number, seconds: number): void {
    const m = this.byCode;
    m.set(status, (m.get(status) ?? 0) + 1);
    const c = classOf(status);
    let b = 0;
    while (b < NB && seconds > (DURATION_BUCKETS[b] as number)) b++;
    this.buckets[c * (NB + 1) + b]!++;
    this.sums[c]! += seconds;
    this.counts[c]!++;
  }
}

const REQUEST_LABELS = ['direction', 'source_service', 'destination_service', 'response_code', 'response_code_class'] as const;
const DURATION_LABELS = ['direction', 'source_service', 'destination_service', 'response_code_class'] as const;
// `le` is the bucket label the histogram itself adds.
type DurationLabel = (typeof DURATION_LABELS)[number] | 'le';
const DURATION_NAME = 'hostmesh_request_duration_seconds';
const DURATION_HELP = 'HTTP request duration through the proxy, from the request head to the response head, by edge and status class.';

/**
 * A histogram whose values come from EdgeStats at scrape time. It is a real prom-client Histogram
 * (registered, typed, formatted by the registry); only where its numbers come from differs.
 */
class EdgeDurationHistogram extends Histogram<DurationLabel> {
  constructor(
    registry: Registry,
    private readonly edges: () => Iterable<EdgeStats>,
  ) {
    super({
      name: DURATION_NAME,
      help: DURATION_HELP,
      labelNames: DURATION_LABELS,
      buckets: [...DURATION_BUCKETS],
      registers: [registry],
    });
  }

  override async get(): Promise<MetricObjectWithValues<MetricValueWithName<DurationLabel>>> {
    return this.getForPromString();
  }

  /** The registry prefers this to get() when formatting text. */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<DurationLabel>>> {
    const values: MetricValueWithName<DurationLabel>[] = [];
    const name = DURATION_NAME;
    for (const e of this.edges()) {
      for (let c = 0; c < CLASSES.length; c++) {
        const count = e.counts[c] as number;
        if (count === 0) continue;
        const labels = { direction: e.direction, source_service: e.source, destination_service: e.destination, response_code_class: CLASSES[c] as string };
        let acc = 0;
        for (let b = 0; b < NB; b++) {
          acc += e.buckets[c * (NB + 1) + b] as number;
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: DURATION_BUCKETS[b] as number }, value: acc });
        }
        values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: count });
        values.push({ metricName: `${name}_sum`, labels, value: e.sums[c] as number });
        values.push({ metricName: `${name}_count`, labels, value: count });
      }
    }
    // The typings declare `type` as a numeric enum prom-client does not export; the registry prints this string.
    return { name, help: DURATION_HELP, type: 'histogram' as unknown as MetricType, values, aggregator: 'sum', collect: () => undefined };
  }
}

/** Edges are keyed direction → source → destination: no key string is built per lookup. */
export class RequestMetrics {
  private readonly edgeMap = new Map<Direction, Map<string, Map<string, EdgeStats>>>();
  private readonly all: EdgeStats[] = [];

  constructor(
    registry: Registry,
    /**
     * False: the edges are still kept (for the summaries) but the request counter and histogram
     * are not registered, so a scrape neither builds nor serves their series.
     */
    readonly exposed = true,
  ) {
    if (!exposed) return;
    const all = this.all;
    new Counter({
      name: 'hostmesh_requests_total',
      help: 'HTTP requests proxied, by direction, source and destination service, response code and class.',
      labelNames: REQUEST_LABELS,
      registers: [registry],
      collect() {
        // Totals live in EdgeStats; the counter is rebuilt from them at each scrape.
        this.reset();
        for (const e of all) {
          for (const [code, n] of e.byCode) {
            this.inc({ direction: e.direction, source_service: e.source, destination_service: e.destination, response_code: code, response_code_class: CLASSES[classOf(code)] }, n);
          }
        }
      },
    });
    new EdgeDurationHistogram(registry, () => all);
  }

  /** The edge's stats, made on first use. Call once per connection, not per request. */
  edge(direction: Direction, source: string, destination: string): EdgeStats {
    let bySource = this.edgeMap.get(direction);
    if (bySource === undefined) this.edgeMap.set(direction, (bySource = new Map()));
    let byDest = bySource.get(source);
    if (byDest === undefined) bySource.set(source, (byDest = new Map()));
    let e = byDest.get(destination);
    if (e === undefined) {
      e = new EdgeStats(direction, source, destination);
      byDest.set(destination, e);
      this.all.push(e);
    }
    return e;
  }

  /** Every edge seen since start (totals only grow). */
  edges(): readonly EdgeStats[] {
    return this.all;
  }
}
