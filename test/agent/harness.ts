// What agent tests share beyond the fake server: a scriptable health source and quiet deps.
import { EventEmitter } from 'node:events';
import type { HealthSource } from '../../agent/control/health-report.js';
import type { AgentDeps } from '../../agent/main.js';
import { testLog } from './fake-server.js';

export class FakeHealth extends EventEmitter implements HealthSource {
  readonly state = new Map<string, boolean>();
  start(): void {}
  stop(): void {}
  isHealthy(service: string): boolean {
    return this.state.get(service) ?? true;
  }
  set(service: string, healthy: boolean): void {
    this.state.set(service, healthy);
    this.emit('change', service, healthy);
  }
}

/** Fast backoff (random 0.05 of each window), no real probes, no systeminformation. */
export function testDeps(extra: AgentDeps = {}): AgentDeps {
  return { log: testLog(), health: new FakeHealth(), facts: async () => ({ hostname: 'test', agentVersion: 'test' }), random: () => 0.05, ...extra };
}
