// The agent's own metrics, on a registry of its own (not prom-client's global one), so several
// agents in one test process, or the proxy's metrics added later, never collide.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

export class AgentMetrics {
  readonly registry = new Registry();
  readonly configRevision = new Gauge({
    name: 'hostmesh_agent_config_revision',
    help: 'Revision of the configuration snapshot in force (0 before the first one).',
    registers: [this.registry],
  });
  readonly connected = new Gauge({
    name: 'hostmesh_agent_connected',
    help: '1 while the control connection to the server is up, else 0.',
    registers: [this.registry],
  });
  readonly reconnects = new Counter({
    name: 'hostmesh_agent_reconnects_total',
    help: 'Attempts to re-establish the control connection after it was lost or refused.',
    registers: [this.registry],
  });
  readonly certExpiry = new Gauge({
    name: 'hostmesh_agent_cert_expiry_timestamp_seconds',
    help: 'Expiry (notAfter, Unix seconds) of each certificate the agent holds, by SPIFFE identity.',
    labelNames: ['identity'] as const,
    registers: [this.registry],
  });
  readonly snapshotsRejected = new Counter({
    name: 'hostmesh_agent_snapshots_rejected_total',
    help: 'Snapshots answered with a nack (bad hash, invalid slice, or a failed apply).',
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    // process_cpu_seconds_total, process_resident_memory_bytes, nodejs_eventloop_lag_seconds…: the
    // standard names, so the usual Node.js dashboards work on an agent too.
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.configRevision.set(0);
    this.connected.set(0);
  }
}
