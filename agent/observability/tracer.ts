// One span per request per hop. The outbound side makes a CLIENT span, the inbound side a SERVER
// span; each continues the trace it was given (or starts one) and forwards a traceparent naming
// its own span as the parent, so the service behind the mesh sees the inbound agent's span as its
// parent, and the trace reads app → agent A → agent B → service.
//
// Only when tracing is configured does a hop rewrite the parent id: a span id that no collector
// ever receives would cut the caller's own trace in two, so without an exporter the header is
// passed on as it came (and only started when absent).
import { setHeader, getHeader } from '../http/head-writer.js';
import { newSpanId, newTraceId } from '../proxy/http1/trace-ids.js';
import type { OtlpExporter, SpanRecord } from './otlp-exporter.js';
import { formatTraceparent, parseTraceparent } from './trace-context.js';

export interface Hop {
  traceId: string;
  spanId: string;
  parentId: string | null;
  sampled: boolean;
}

export class Tracer {
  constructor(
    private readonly exporter: OtlpExporter,
    /** Share of new traces recorded; a trace that arrives keeps its caller's decision. */
    private readonly sampleRatio: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** This hop's span for a request; `headers` (the parser's flat array) gets its traceparent. */
  hop(headers: string[]): Hop {
    const given = getHeader(headers, 'traceparent');
    const parent = given === undefined ? null : parseTraceparent(given);
    const hop: Hop =
      parent === null
        ? { traceId: newTraceId(), spanId: newSpanId(), parentId: null, sampled: this.sampleRatio >= 1 || this.random() < this.sampleRatio }
        : { traceId: parent.traceId, spanId: newSpanId(), parentId: parent.parentId, sampled: parent.sampled };
    setHeader(headers, 'traceparent', formatTraceparent(hop.traceId, hop.spanId, hop.sampled));
    return hop;
  }

  /** The hop's request is over: queue its span if the trace is sampled. */
  end(hop: Hop, span: Omit<SpanRecord, 'traceId' | 'spanId' | 'parentId'>): void {
    if (!hop.sampled) return;
    this.exporter.push({ ...span, traceId: hop.traceId, spanId: hop.spanId, parentId: hop.parentId });
  }

  close(): Promise<void> {
    return this.exporter.close();
  }
}
