// `hostmesh server`: start the control plane. The server module is imported only here, and only
// when this command runs, so the other commands start fast and never load fastify or SQLite.
import path from 'node:path';
import type { Command } from 'commander';
import type { ServerOptions } from '../../server/config.js';

export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_LISTEN = '127.0.0.1:7443';

interface Flags {
  dataDir?: string;
  listen: string;
  trustDomain?: string;
  advertise?: string;
  metricsPublic?: boolean;
}

export function registerServer(program: Command): void {
  program
    .command('server')
    .description('run the hostmesh server (control plane)')
    .option('--listen <host:port>', 'address of the HTTPS API', DEFAULT_LISTEN)
    .option('--trust-domain <td>', 'SPIFFE trust domain, fixed when the data dir is first made (default hostmesh.local)')
    .option('--advertise <host>', 'host name or address agents and the CLI should dial, when it differs from --listen')
    .option('--metrics-public', 'serve GET /metrics without a token (default: a viewer or admin token is required)')
    .addHelpText('after', `\nThe data dir is --data-dir, else HOSTMESH_DATA_DIR, else ${DEFAULT_DATA_DIR}.`)
    .action(async (_opts: unknown, self: Command) => {
      // --data-dir is program-wide (the API commands read the same dir), hence WithGlobals.
      const f = self.optsWithGlobals() as Flags;
      const opts: ServerOptions = {
        // The same fallback the API commands use to find a local server, so both sides agree.
        dataDir: path.resolve(f.dataDir ?? process.env['HOSTMESH_DATA_DIR'] ?? DEFAULT_DATA_DIR),
        listen: f.listen,
      };
      if (f.trustDomain !== undefined) opts.trustDomain = f.trustDomain;
      if (f.advertise !== undefined) opts.advertise = f.advertise;
      if (f.metricsPublic) opts.metricsPublic = true;
      const { runServer } = await import('../../server/main.js');
      await runServer(opts);
    });
}
