// Thin entry point: build the agent's parts, start them, stop them in reverse on SIGTERM/SIGINT.
// The logic lives in the modules: control/ (join, connection, frames), config/ (apply), certs/,
// dataplane/, admin/, and health/ (owned separately, reached through health-link.ts).
import path from 'node:path';
import { HmError } from '../shared/errors.js';
import type { HostConfig } from '../shared/host-config.js';
import { createLogger, type Logger } from '../shared/log.js';
import { VERSION } from '../shared/version.js';
import { startAdminServer, type AdminView } from './admin/server.js';
import { CertManager } from './certs/manager.js';
import { TrustBundle } from './certs/trust.js';
import { isAbortError, type Clock } from './clock.js';
import { ConfigApplier } from './config/apply.js';
import { ControlConnection, type ConnectionTiming } from './control/connection.js';
import { createFrameHandler } from './control/dispatch.js';
import { HealthReporter, type HealthSource } from './control/health-report.js';
import { DURATION_BUCKETS } from './metrics/request-metrics.js';
import { StatsSummarizer } from './stats/summarizer.js';
import { buildHello } from './control/hello.js';
import { ensureIdentity } from './control/identity.js';
import { ProxyDataPlane } from './proxy/dataplane.js';
import { collectFacts, type Facts } from './facts.js';
import { createHealthSource } from './health-link.js';
import { AgentMetrics } from './metrics/agent-metrics.js';
import { StateStore } from './state/store.js';
import { reopenLogsOnSighup } from './reload.js';

/** Seams for tests; production uses the defaults. */
export interface AgentDeps {
  log?: Logger;
  clock?: Clock;
  random?: () => number;
  health?: HealthSource;
  facts?: () => Promise<Facts>;
  timing?: Partial<ConnectionTiming>;
  /** Aborting it ends a join that is still retrying. */
  signal?: AbortSignal;
}

export interface RunningAgent {
  /** http://host:port of the admin endpoint. */
  adminUrl: string;
  certs: CertManager;
  dataPlane: ProxyDataPlane;
  /**
   * Leave gracefully: tell the server this host's instances are going (so callers stop picking
   * them), take no new connections, and wait up to `timeoutMs` for requests in flight to finish.
   * stop() afterwards closes what is left.
   */
  drain(timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** Start every part; resolves once the agent serves (joined, or loaded from its state dir). */
export async function startAgent(config: HostConfig, deps: AgentDeps = {}): Promise<RunningAgent> {
  const log = deps.log ?? createLogger('hostmesh-agent', { level: config.logLevel });
  const child = (component: string): Logger => log.child({ component });
  log.info({ host: config.name, server: config.server, stateDir: config.stateDir, version: VERSION }, 'hostmesh agent starting');

  const store = new StateStore(path.resolve(config.stateDir), (file, reason) => log.warn({ file, reason }, 'ignoring a damaged state file'));
  try {
    await store.init();
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new HmError('HM_ERR_STARTUP', `state dir ${store.dir} is not usable (${why}): give a writable directory with stateDir: or --state-dir`, { cause: e });
  }
  const metrics = new AgentMetrics();
  const facts = (deps.facts ?? collectFacts)();
  const health = deps.health ?? createHealthSource(config.services);
  const parts: { certs?: CertManager; applier?: ConfigApplier; conn?: ControlConnection; dataPlane?: ProxyDataPlane } = {};

  const view: AdminView = {
    registry: metrics.registry,
    readiness: () => {
      if (!parts.certs || !parts.applier) return { ready: false, reason: 'not joined to the mesh yet' };
      if (!parts.applier.current) return { ready: false, reason: 'no configuration applied yet' };
      const problems = parts.certs.problems();
      return problems.length > 0 ? { ready: false, reason: problems.join('; ') } : { ready: true, reason: '' };
    },
    dump: () => ({
      host: config.name,
      appliedRevision: parts.applier?.current?.revision ?? null,
      appliedHash: parts.applier?.current?.hash ?? null,
      connected: parts.conn?.isConnected ?? false,
      slice: parts.applier?.current?.slice ?? null,
      certs: parts.certs?.status() ?? { host: null, services: {} },
      health: Object.fromEntries(config.services.map((s) => [s.name, health.isHealthy(s.name)])),
      listeners: parts.dataPlane?.listening() ?? {},
    }),
  };
  // Up before joining, so /readyz can say why the agent is not ready while it waits for the server.
  const admin = await startAdminServer(config.admin, view, child('admin'));
  const stops: Array<() => unknown> = [() => admin.close()];
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) await Promise.resolve(stop()).catch((e: Error) => log.warn({ err: e.message }, 'error while stopping'));
  };

  try {
    const identity = await ensureIdentity({ config, store, log: child('join'), ...optional({ signal: deps.signal, random: deps.random }) });
    const trust = new TrustBundle(identity.caBundle);
    const dataPlane = (parts.dataPlane = new ProxyDataPlane(config, metrics.registry, child('dataplane')));
    stops.push(() => dataPlane.close());
    const applier = new ConfigApplier({ dataPlane, store, trust, metrics, log: child('config') });
    const saved = await store.readSnapshot();
    if (saved) {
      const r = await applier.restore(saved);
      if (r.type === 'nack') log.error({ revision: saved.revision, error: r.error }, 'cannot put the saved config back in force; waiting for the server');
    }
    parts.applier = applier;

    const certs = new CertManager({
      hostName: config.name,
      trustDomain: identity.trustDomain,
      hostPair: identity.pair,
      store,
      trust,
      log: child('certs'),
      metrics,
      ...optional({ clock: deps.clock, random: deps.random }),
    });
    await certs.setServices(config.services.map((s) => s.name));
    parts.certs = certs;
    stops.push(() => certs.stop());
    await dataPlane.start(certs, trust, identity.trustDomain);

    health.start();
    stops.push(() => health.stop());
    const hostFacts = await facts;

    const conn = (parts.conn = new ControlConnection({
      server: config.server,
      tls: () => {
        const host = certs.getHostCert();
        if (!host) throw new Error('no host certificate');
        return { cert: host.certPem, key: host.keyPem, ca: trust.pems };
      },
      hello: () => buildHello(config, applier.current, health, hostFacts),
      log: child('control'),
      metrics,
      ...optional({ random: deps.random, timing: deps.timing }),
    }));
    const reporter = new HealthReporter(health, (m) => conn.send(m), child('health'));
    stops.push(() => reporter.stop());
    if (config.metrics?.summaries !== false) {
      const summaries = new StatsSummarizer(() => dataPlane.requestEdges(), DURATION_BUCKETS, (m) => conn.send(m), config.metrics?.summaryIntervalMs ?? 10_000, child('stats'));
      summaries.start();
      stops.push(() => summaries.stop());
    }
    conn.on('frame', createFrameHandler({ send: (m) => conn.send(m), applier, certs, log: child('control') }));
    conn.on('connected', () => {
      reporter.connected();
      certs.connected((m) => conn.send(m));
    });
    conn.on('disconnected', () => certs.disconnected());
    conn.start();
    stops.push(() => conn.stop());
  } catch (e) {
    await stopAll();
    throw e;
  }

  let stopping: Promise<void> | null = null;
  const drain = async (timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    const conn = parts.conn;
    health.stop();
    const leaving = config.services.map((s) => ({ service: s.name, healthy: false }));
    if (leaving.length > 0 && conn?.send({ type: 'health', changes: leaving })) {
      // Long enough for the server to push the change and callers to apply it, short against the budget.
      await new Promise((r) => setTimeout(r, Math.min(1000, timeoutMs / 4)));
    }
    const left = await parts.dataPlane!.drain(deadline);
    if (left > 0) log.warn({ connections: left, timeoutMs }, 'drain timeout: closing the connections still open');
    else log.info('drained: no connection left open');
  };
  return {
    drain,
    adminUrl: admin.url,
    certs: parts.certs!,
    dataPlane: parts.dataPlane!,
    stop: () => {
      stopping ??= stopAll().then(() => log.info('hostmesh agent stopped'));
      return stopping;
    },
  };
}

/** Run until SIGTERM or SIGINT, then stop everything and resolve (exit code 0). */
export async function runAgent(config: HostConfig): Promise<void> {
  const log = createLogger('hostmesh-agent', { level: config.logLevel });
  reopenLogsOnSighup(log);
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'stopping');
    stop.abort();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    const agent = await startAgent(config, { log, signal: stop.signal });
    if (!stop.signal.aborted) await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
    // A second signal during the drain ends the process at once (the handlers above were `once`).
    await agent.drain(config.drainTimeoutMs ?? 20_000);
    await agent.stop();
  } catch (e) {
    if (!isAbortError(e)) throw e;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    log.flush?.();
  }
  // Everything is closed; a stray handle (a probe's child process) must not hold the exit.
  setTimeout(() => process.exit(0), 3_000).unref();
}

function optional<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
