// `hostmesh server`: start the control plane. The server module is imported only here, and only
// when asked for, so the other commands start fast and never load fastify or SQLite.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { CliError } from '../errors.js';

export const DEFAULT_LISTEN = '127.0.0.1:7443';

export interface ServerOptions {
  dataDir: string;
  listen: string;
  trustDomain?: string;
}

interface ServerModule {
  runServer(opts: ServerOptions): Promise<void>;
}

export function registerServer(program: Command): void {
  program
    .command('server')
    .description('run the hostmesh server (control plane)')
    .option('--listen <host:port>', 'address of the HTTPS API', DEFAULT_LISTEN)
    .option('--trust-domain <td>', 'SPIFFE trust domain, set when the data dir is first made (default hostmesh.local)')
    .addHelpText('after', '\nThe data dir is --data-dir, else HOSTMESH_DATA_DIR, else ./data.')
    .action(async (_opts: unknown, self: Command) => {
      // --data-dir is a program-wide option (the API commands read the same dir), hence WithGlobals.
      const o = self.optsWithGlobals() as { dataDir?: string; listen: string; trustDomain?: string };
      const opts: ServerOptions = {
        dataDir: path.resolve(o.dataDir ?? process.env['HOSTMESH_DATA_DIR'] ?? './data'),
        listen: o.listen,
      };
      if (o.trustDomain !== undefined) opts.trustDomain = o.trustDomain;
      const { runServer } = await loadServer();
      await runServer(opts);
    });
}

async function loadServer(): Promise<ServerModule> {
  // A computed specifier: the server is built by its own module and may be absent from a
  // CLI-only build; tsc must not require it to exist.
  const url = new URL('../server/main.js', import.meta.url);
  let mod: Partial<ServerModule>;
  try {
    mod = (await import(url.href)) as Partial<ServerModule>;
  } catch (e) {
    const file = fileURLToPath(url);
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && String((e as Error).message).includes(`module '${file}'`)) {
      throw new CliError(`this build has no server (${file} is missing)`);
    }
    throw e;
  }
  if (typeof mod.runServer !== 'function') throw new CliError(`${fileURLToPath(url)} does not export runServer`);
  return mod as ServerModule;
}
