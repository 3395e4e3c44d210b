// The one place the agent touches agent/health/ (the checks and their scheduling live there); the
// rest of the agent only knows the HealthSource interface, so tests can hand it a fake.
import type { ResolvedService } from '../shared/host-config.js';
import type { HealthSource } from './control/health-report.js';
import { HealthMonitor } from './health/index.js';

export function createHealthSource(services: readonly ResolvedService[]): HealthSource {
  return new HealthMonitor(services);
}
