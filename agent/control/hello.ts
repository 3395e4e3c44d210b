// The first message on every connection: who this host is, what it runs and calls, what config it
// has in force, and the health of each local instance. The server answers with a snapshot when the
// applied hash is not the one it would send.
import type { HostConfig } from '../../shared/host-config.js';
import { PROTOCOL_VERSION, type HelloMsg } from '../../shared/protocol.js';
import { VERSION } from '../../shared/version.js';
import type { AppliedConfig } from '../config/apply.js';
import type { HealthSource } from './health-report.js';

const UNSPECIFIED = new Set(['0.0.0.0', '::', '[::]', '']);

export function buildHello(config: HostConfig, applied: AppliedConfig | null, health: HealthSource, facts: Record<string, unknown>): HelloMsg {
  return {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    host: config.name,
    agentVersion: VERSION,
    appliedRevision: applied?.revision ?? null,
    appliedHash: applied?.hash ?? null,
    // Other agents dial this; a wildcard bind is no address for them, the host's own address is.
    inbound: { address: UNSPECIFIED.has(config.inbound.host) ? config.address : config.inbound.host, port: config.inbound.port },
    services: config.services.map((s) => ({ name: s.name, port: s.port, labels: { ...s.labels }, healthy: health.isHealthy(s.name) })),
    upstreams: [...new Set(config.upstreams.map((u) => u.service))],
    facts,
  };
}
