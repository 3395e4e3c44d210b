// What route modules need from the running server, passed explicitly rather than imported globally.
import type { Logger } from '../../shared/log.js';
import type { CertificateAuthority } from '../ca/index.js';
import type { Registry } from '../registry/registry.js';
import type { PushHub } from '../push/hub.js';
import type { ServerMetrics } from '../metrics.js';
import type { StatsWindow } from '../stats/window.js';

export interface ApiContext {
  registry: Registry;
  ca: CertificateAuthority;
  log: Logger;
  version: string;
  startedAt: Date;
  /** Set once the push hub is attached (after the app is built, before it listens). */
  hub: PushHub | null;
  metrics: ServerMetrics;
  /** Agents' golden-metric summaries of the last minutes. */
  stats: StatsWindow;
  metricsPublic: boolean;
  /** The URL agents and the CLI reach this server at. */
  publicUrl: string;
}
