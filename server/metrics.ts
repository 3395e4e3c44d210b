// The server's own metrics (Prometheus text on GET /metrics): agents, pushes and acks, API calls,
// certificates and joins. Labels are bounded: route patterns (not URLs), status codes, kinds.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ServerMetrics {
  readonly registry = new Registry();
  readonly agentsConnected = new Gauge({ name: 'hostmesh_server_agents_connected', help: 'Agents with an open control connection.', registers: [this.registry] });
  readonly pushes = new Counter({
    name: 'hostmesh_server_config_pushes_total',
    help: 'Configurations sent to agents: whole snapshots, or deltas on the slice the agent last acked.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly pushToAck = new Histogram({
    name: 'hostmesh_server_push_to_ack_seconds',
    help: 'Time from sending a snapshot to the agent acking it.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly nacks = new Counter({ name: 'hostmesh_server_snapshots_nacked_total', help: 'Snapshots agents refused.', registers: [this.registry] });
  readonly revisionLag = new Histogram({
    name: 'hostmesh_server_agent_revision_lag',
    help: 'Per connected agent, sampled every 10 s: revisions between the current one and what it acked, 0 when it runs its current slice.',
    buckets: [0, 1, 2, 5, 10, 50, 100],
    registers: [this.registry],
  });
  readonly agentsBehind = new Gauge({ name: 'hostmesh_server_agents_behind', help: 'Connected agents not (yet) running the slice last sent to them, at the last 10 s sample.', registers: [this.registry] });
  readonly statsDropped = new Gauge({ name: 'hostmesh_server_stats_edges_dropped', help: 'Edge summaries dropped because a window slot was full (since start).', registers: [this.registry] });
  readonly apiRequests = new Counter({
    name: 'hostmesh_server_api_requests_total',
    help: 'Admin API requests by method, route pattern and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly certificatesIssued = new Counter({
    name: 'hostmesh_server_certificates_issued_total',
    help: 'Certificates signed by the mesh CA, by identity kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly joins = new Counter({ name: 'hostmesh_server_joins_total', help: 'Join attempts by result.', labelNames: ['result'] as const, registers: [this.registry] });
  readonly revision = new Gauge({ name: 'hostmesh_server_revision', help: 'The registry revision.', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'hostmesh_server_' });
  }
}
