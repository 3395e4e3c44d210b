// Reading an agent's /metrics in tests: parsed with a Prometheus text-format parser (so the text
// must be valid exposition format), then looked up by name and a subset of labels.
import http from 'node:http';
import parsePrometheusTextFormat, { type Family } from 'parse-prometheus-text-format';

export type Metrics = ReadonlyMap<string, Family>;

/** Parsed once as served (which checks the whole text) and once with histograms read series by series (see histogram()). */
const SERIES = Symbol('series');
type Parsed = Metrics & { [SERIES]?: Metrics };

export function fetchText(url: string): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** GET <adminUrl>/metrics and parse it (throws if the text does not parse). */
export async function scrape(adminUrl: string): Promise<Metrics> {
  const r = await fetchText(`${adminUrl}/metrics`);
  if (r.status !== 200) throw new Error(`GET ${adminUrl}/metrics: ${r.status}`);
  const m: Parsed = new Map(parsePrometheusTextFormat(r.text).map((f) => [f.name, f]));
  // The parser flattens a histogram's samples by `le` and so merges series with other labels
  // into one. Declared untyped, its _bucket, _sum and _count lines parse as plain samples with
  // all their labels, which is what histogram() reads.
  const untyped = r.text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped');
  // Series alternate _bucket…, _sum, _count: each run parses as a family of its own, merged here by name.
  const series = new Map<string, Family>();
  for (const f of parsePrometheusTextFormat(untyped)) {
    const seen = series.get(f.name);
    if (seen) seen.metrics.push(...f.metrics);
    else series.set(f.name, f);
  }
  m[SERIES] = series;
  return m;
}

function matches(have: Record<string, string> | undefined, want: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(want)) if (have?.[k] !== v) return false;
  return true;
}

/** Sum of the samples of a counter or gauge whose labels include `labels` (0 if none). */
export function sampleSum(m: Metrics, name: string, labels: Record<string, string> = {}): number {
  const f = m.get(name);
  if (!f) return 0;
  return f.metrics.filter((s) => matches(s.labels, labels)).reduce((a, s) => a + Number(s.value), 0);
}

/** Samples of a family whose labels include `labels`. */
export function samples(m: Metrics, name: string, labels: Record<string, string> = {}): Family['metrics'] {
  return (m.get(name)?.metrics ?? []).filter((s) => matches(s.labels, labels));
}

export interface HistogramSample {
  count: number;
  sum: number;
  /** Cumulative counts by upper bound (as printed, e.g. "0.005", "+Inf"). */
  buckets: Record<string, number>;
}

/** The one histogram series whose labels include `labels` (throws unless exactly one matches). */
export function histogram(m: Metrics, name: string, labels: Record<string, string>): HistogramSample {
  const series = (m as Parsed)[SERIES];
  if (!series) throw new Error('histogram() needs metrics from scrape()');
  const counts = samples(series, `${name}_count`, labels);
  if (counts.length !== 1) throw new Error(`${name}${JSON.stringify(labels)}: ${counts.length} series`);
  const own = counts[0]!.labels ?? {};
  const sums = samples(series, `${name}_sum`, own);
  const buckets: Record<string, number> = {};
  for (const b of samples(series, `${name}_bucket`, own)) {
    // Exactly this series: the bucket's labels are its own plus `le`.
    if (Object.keys(b.labels ?? {}).length !== Object.keys(own).length + 1) continue;
    buckets[b.labels!['le']!] = Number(b.value);
  }
  return { count: Number(counts[0]!.value), sum: Number(sums[0]?.value), buckets };
}
