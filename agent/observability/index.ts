// What the proxy needs to observe requests beyond metrics: the access log and the tracer (null
// when no collector is configured), built once from the host config.
import type { Registry } from 'prom-client';
import type { HostConfig } from '../../shared/host-config.js';
import type { Logger } from '../../shared/log.js';
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
