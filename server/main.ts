// Thin entry point: resolve config, build the parts, start them; stop them in reverse on a signal.
import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { HmError, isHmError } from '../shared/errors.js';
import { createLogger } from '../shared/log.js';
import { VERSION } from '../shared/version.js';
import { buildApp } from './api/app.js';
import type { ApiContext } from './api/context.js';
import { CertificateAuthority, ensureServerCert } from './ca/index.js';
import { resolveServerConfig, urlFor, type ServerOptions } from './config.js';
import { DATA_FILES, prepareDataDir } from './data-dir.js';
import { writeFileAtomic } from '../shared/files.js';
import { Registry } from './registry/registry.js';
import { PushHub } from './push/hub.js';
import { ServerMetrics } from './metrics.js';
import { StatsWindow } from './stats/window.js';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** Start the server and resolve once it listens. Throws HmError (HM_ERR_STARTUP/HM_ERR_CONFIG) with a one-line message. */
export async function startServer(opts: ServerOptions): Promise<RunningServer> {
  const cfg = resolveServerConfig(opts);
  const log = createLogger('hostmesh-server');
  prepareDataDir(cfg.dataDir);

  const registry = Registry.open(path.join(cfg.dataDir, DATA_FILES.database), cfg.trustDomain);
  try {
    const ca = await CertificateAuthority.loadOrCreate(path.join(cfg.dataDir, DATA_FILES.caDir), registry.trustDomain);
    const isIp = net.isIP(cfg.publicHost) !== 0;
    const serverCert = await ensureServerCert(ca, path.join(cfg.dataDir, DATA_FILES.tlsDir), {
      dnsNames: [...new Set(['localhost', os.hostname().toLowerCase(), ...(isIp ? [] : [cfg.publicHost]), ...(net.isIP(cfg.host) ? [] : [cfg.host])])],
      ipAddresses: [...new Set(['127.0.0.1', '::1', ...(isIp ? [cfg.publicHost] : []), ...(net.isIP(cfg.host) && cfg.host !== '0.0.0.0' && cfg.host !== '::' ? [cfg.host] : [])])],
    });

    await bootstrapAdminToken(registry, cfg.dataDir);

    const publicUrl = urlFor(cfg.publicHost, cfg.port);
    const metrics = new ServerMetrics();
    const stats = new StatsWindow();
    const ctx: ApiContext = { registry, ca, log, version: VERSION, startedAt: new Date(), publicUrl, hub: null, metrics, stats, metricsPublic: cfg.metricsPublic };
    const app = await buildApp(ctx, { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPem: ca.rootPem });
    const hub = new PushHub({ registry, ca, log, metrics, stats });
    hub.attach(app.server);
    ctx.hub = hub;
    try {
      await app.listen({ host: cfg.host, port: cfg.port });
    } catch (e) {
      await hub.stop().catch(() => undefined);
      await app.close().catch(() => undefined);
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'the port is already in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (e as Error).message;
      throw new HmError('HM_ERR_STARTUP', `cannot listen on ${cfg.host}:${cfg.port}: ${why}`, { cause: e });
    }
    await writeFileAtomic(
      path.join(cfg.dataDir, DATA_FILES.serverInfo),
      JSON.stringify({ url: publicUrl, trustDomain: registry.trustDomain, caFingerprint: ca.fingerprint, version: VERSION }, null, 2) + '\n',
      0o644,
    );
    log.info({ url: publicUrl, dataDir: cfg.dataDir, trustDomain: registry.trustDomain, caFingerprint: ca.fingerprint, revision: registry.revision() }, 'hostmesh server listening');

    let closing: Promise<void> | null = null;
    return {
      url: publicUrl,
      close: () => {
        closing ??= (async () => {
          await hub.stop();
          await app.close();
          registry.close();
          log.info('hostmesh server stopped');
          log.flush?.();
        })();
        return closing;
      },
    };
  } catch (e) {
    registry.close();
    throw e;
  }
}

/**
 * On the very first start there is no admin token: make one, print it once, and leave a copy only
 * the owner can read for the local CLI. Later starts print nothing (only the hash is stored).
 */
async function bootstrapAdminToken(registry: Registry, dataDir: string): Promise<void> {
  if (registry.adminTokens.activeCount() > 0) return;
  const created = registry.adminTokens.create({ role: 'admin', description: 'bootstrap token made on first start', actor: 'server' });
  const file = path.join(dataDir, DATA_FILES.adminToken);
  await writeFileAtomic(file, created.token + '\n', 0o600);
  process.stdout.write(
    `\nhostmesh: first start. Admin token (shown once; a copy readable only by you is in ${file}):\n\n    ${created.token}\n\n`,
  );
}

/** `hostmesh server`: run until SIGTERM/SIGINT, then shut down gracefully and exit 0. */
export async function runServer(opts: ServerOptions): Promise<void> {
  let server: RunningServer;
  try {
    server = await startServer(opts);
  } catch (e) {
    const msg = isHmError(e) ? e.message : (e as Error).message;
    process.stderr.write(`hostmesh server: ${msg}\n`);
    process.exit(1);
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.stderr.write(`hostmesh server: ${sig}, shutting down\n`);
      // A second signal while draining means "now".
      process.once(sig as NodeJS.Signals, () => process.exit(1));
      server.close().then(resolve, (err) => {
        process.stderr.write(`hostmesh server: shutdown error: ${(err as Error).message}\n`);
        process.exit(1);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  process.exit(0);
}

// Allow `node dist/server/main.js` for quick local runs without the CLI.
if (process.argv[1] && fs.realpathSync(process.argv[1]) === fs.realpathSync(new URL(import.meta.url).pathname)) {
  void runServer({ dataDir: process.env['HOSTMESH_DATA_DIR'], listen: process.env['HOSTMESH_LISTEN'] });
}
