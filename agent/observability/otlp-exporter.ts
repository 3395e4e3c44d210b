// Span export as OTLP/HTTP JSON (opentelemetry-proto, `POST /v1/traces`). Spans wait in a bounded
// queue and go in batches, one POST at a time, from a timer or when a batch fills up: a request
// never waits for the collector, and a slow or absent collector costs dropped spans (counted),
// never memory or failed requests.
import http from 'node:http';
import https from 'node:https';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../../shared/log.js';
import { VERSION } from '../../shared/version.js';
import { postOnce } from '../http-post.js';

export const SPAN_KIND_SERVER = 2;
export const SPAN_KIND_CLIENT = 3;

export interface SpanRecord {
  /** The `service.name` resource attribute: the mesh service the span speaks for. */
  service: string;
  traceId: string;
  spanId: string;
  parentId: string | null;
  name: string;
  kind: typeof SPAN_KIND_SERVER | typeof SPAN_KIND_CLIENT;
  /** Unix epoch, milliseconds (fractional). */
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number>;
  error: boolean;
}

export interface ExporterOptions {
  endpoint: string;
  maxQueue: number;
  /** Spans per POST. */
  batchSize?: number;
  /** How long a span may wait for a batch to fill. */
  flushMs?: number;
  /** Per POST, headers and body. */
  timeoutMs?: number;
}

export class OtlpExporter {
  private queue: SpanRecord[] = [];
  private sending: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;
  private lastWarn = 0;
  private closed = false;
  private readonly batchSize: number;
  private readonly timeoutMs: number;
  private readonly exported: Counter;
  private readonly dropped: Counter<'reason'>;
  /** One kept-alive connection to the collector: batches go one at a time. */
  private readonly agent: http.Agent;

  constructor(
    private readonly opts: ExporterOptions,
    registry: Registry,
    private readonly log: Logger,
  ) {
    this.batchSize = opts.batchSize ?? 512;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.exported = new Counter({ name: 'hostmesh_trace_spans_exported_total', help: 'Spans accepted by the OTLP collector.', registers: [registry] });
    this.dropped = new Counter({
      name: 'hostmesh_trace_spans_dropped_total',
      help: 'Spans not exported: queue_full (the collector is slower than the traffic) or export_failed.',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.timer = setInterval(() => this.kick(), opts.flushMs ?? 1000);
    this.timer.unref();
    const keep = { keepAlive: true, maxSockets: 1 };
    this.agent = opts.endpoint.startsWith('https:') ? new https.Agent(keep) : new http.Agent(keep);
  }

  push(span: SpanRecord): void {
    if (this.closed || this.queue.length >= this.opts.maxQueue) {
      this.dropped.inc({ reason: 'queue_full' });
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.batchSize) this.kick();
  }

  /** Send what is queued, then stop; gives up after `graceMs`. */
  async close(graceMs = 2000): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const done = (async () => {
      while (this.queue.length > 0 || this.sending) {
        if (!this.sending) this.kick();
        await this.sending;
      }
    })();
    let t: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((r) => (t = setTimeout(r, graceMs)))]);
    clearTimeout(t);
    this.agent.destroy();
  }

  private kick(): void {
    if (this.sending !== null || this.queue.length === 0) return;
    const batch = this.queue.length <= this.batchSize ? this.queue : this.queue.slice(0, this.batchSize);
    this.queue = batch === this.queue ? [] : this.queue.slice(this.batchSize);
    this.sending = this.send(batch).finally(() => {
      this.sending = null;
      if (this.queue.length >= this.batchSize || (this.closed && this.queue.length > 0)) this.kick();
    });
  }

  private async send(batch: SpanRecord[]): Promise<void> {
    try {
      // The answer is only looked at for its status; a large one is not a collector.
      const { statusCode: status } = await postOnce(this.opts.endpoint, JSON.stringify(toOtlp(batch)), { timeoutMs: this.timeoutMs, maxBytes: 1 << 20, contentType: 'application/json', agent: this.agent });
      if (status < 200 || status >= 300) throw new Error(`collector answered ${status}`);
      this.exported.inc(batch.length);
    } catch (e) {
      this.dropped.inc({ reason: 'export_failed' }, batch.length);
      // A down collector would otherwise log once a second.
      const now = Date.now();
      if (now - this.lastWarn > 30_000) {
        this.lastWarn = now;
        this.log.warn({ endpoint: this.opts.endpoint, err: (e as Error).message, spans: batch.length }, 'span export failed; spans dropped');
      }
    }
  }
}

/** Epoch milliseconds → the decimal nanoseconds string OTLP/JSON uses for uint64 (µs precision). */
function nanos(ms: number): string {
  return `${Math.round(ms * 1000)}000`;
}

function attr(key: string, v: string | number): { key: string; value: Record<string, string | number> } {
  return { key, value: typeof v === 'number' ? (Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v }) : { stringValue: v } };
}

/** ExportTraceServiceRequest, grouped by service (one resource each). Ids are hex, as OTLP/JSON wants. */
export function toOtlp(spans: readonly SpanRecord[]): unknown {
  const byService = new Map<string, SpanRecord[]>();
  for (const s of spans) {
    let l = byService.get(s.service);
    if (l === undefined) byService.set(s.service, (l = []));
    l.push(s);
  }
  return {
    resourceSpans: [...byService].map(([service, list]) => ({
      resource: { attributes: [attr('service.name', service)] },
      scopeSpans: [
        {
          scope: { name: 'hostmesh-agent', version: VERSION },
          spans: list.map((s) => ({
            traceId: s.traceId,
            spanId: s.spanId,
            ...(s.parentId ? { parentSpanId: s.parentId } : {}),
            name: s.name,
            kind: s.kind,
            startTimeUnixNano: nanos(s.startMs),
            endTimeUnixNano: nanos(s.endMs),
            attributes: Object.entries(s.attributes).map(([k, v]) => attr(k, v)),
            status: { code: s.error ? 2 : 0 },
          })),
        },
      ],
    })),
  };
}
