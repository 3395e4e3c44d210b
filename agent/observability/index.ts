// What the proxy needs to observe requests beyond metrics: the access log and the tracer (null
// when no collector is configured), built once from the host config.
import type { Registry } from 'prom-client';
import type { HostConfig } from '../../shared/host-config.js';
import type { Logger } from '../../shared/log.js';
import type { RequestHead } from '../http/head-parser.js';
import { getHeader } from '../http/head-writer.js';
import { AccessLog } from './access-log.js';
import { OtlpExporter } from './otlp-exporter.js';
import { Tracer } from './tracer.js';

export class Observability {
  readonly accessLog: AccessLog;
  readonly tracer: Tracer | null;

  constructor(config: Pick<HostConfig, 'accessLog' | 'tracing'>, registry: Registry, log: Logger) {
    this.accessLog = new AccessLog(config.accessLog?.path ?? null, log);
    const t = config.tracing ?? null;
    this.tracer = t ? new Tracer(new OtlpExporter({ endpoint: t.otlpEndpoint, maxQueue: t.maxQueue }, registry, log.child({ part: 'tracing' })), t.sampleRatio) : null;
  }

  async close(): Promise<void> {
    await this.tracer?.close();
    this.accessLog.close();
  }
}

/** The path of a request target without its query (which may carry credentials), for logs and spans. */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/** What both sides of an http hop log about a request, read from its head and its counters. */
export interface HttpExchange {
  direction: 'inbound' | 'outbound';
  source: string;
  destination: string;
  head: RequestHead;
  status: number;
  /** performance.now() at the request head and at the end of the exchange. */
  startedMs: number;
  endMs: number;
  bytesReceived: number;
  bytesSent: number;
  upstream: string;
  traceId: string;
}

/** The access log line of one http request; `extra` adds the side's own fields. */
export function httpLine(x: HttpExchange, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const h = x.head;
  return {
    direction: x.direction,
    protocol: 'http',
    source: x.source,
    destination: x.destination,
    method: h.method,
    authority: h.host ?? '',
    path: pathOf(h.target),
    status: x.status,
    duration_ms: Math.round((x.endMs - x.startedMs) * 1000) / 1000,
    bytes_received: x.bytesReceived,
    bytes_sent: x.bytesSent,
    upstream_host: x.upstream,
    ...extra,
    trace_id: x.traceId,
    request_id: getHeader(h.headers, 'x-request-id') ?? '',
  };
}
