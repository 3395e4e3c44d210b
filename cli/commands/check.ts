// `hostmesh check`: pre-flight and health of this host, like `linkerd check`. One line per item,
// ✔ or ✖ with the fix, and exit 1 when anything failed. `--pre` keeps to what must hold before
// the agent first starts (the installer runs it), so "not joined yet" and "not running" pass there.
import { Option, type Command } from 'commander';
import { loadHostConfig } from '../../agent/config/load.js';
import type { HostConfig } from '../../shared/host-config.js';
import { checkHostCert } from '../check/host-cert.js';
import { checkAgentReady, checkPorts, checkRevision, checkServices, readAgent } from '../check/local.js';
import { fail, pass, renderItems, type CheckItem } from '../check/result.js';
import { checkServer } from '../check/server.js';
import { CliError } from '../errors.js';

export const DEFAULT_AGENT_CONFIG = '/etc/hostmesh/agent.yaml';

export interface CheckOptions {
  configFile: string;
  pre: boolean;
  adminToken?: string | undefined;
  now?: () => number;
}

export async function runChecks(opts: CheckOptions): Promise<CheckItem[]> {
  const now = opts.now ?? Date.now;
  const file = opts.configFile;
  let config: HostConfig;
  try {
    config = loadHostConfig({ config: file });
  } catch (e) {
    return [fail('config', (e as Error).message, `fix ${file} (the field is named above); see README "The host config"`)];
  }
  const items: CheckItem[] = [pass('config', `${file} is valid (host ${config.name}, server ${config.server})`)];
  const agent = await readAgent(config);
  const server = await checkServer(config, file, now);
  items.push(...server.items);
  items.push(await checkHostCert(config, { pre: opts.pre, now: now(), configFile: file }));
  items.push(...(await checkPorts(config, agent, file)));
  if (!opts.pre) items.push(await checkAgentReady(config));
  // Services may come up after the agent; before its first start only what it needs is checked.
  if (!opts.pre) items.push(...(await checkServices(config, agent, file)));
  if (!opts.pre) items.push(await checkRevision(config, agent, server.rootPem, opts.adminToken));
  return items;
}

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('check this host: config, server, CA pin, certificate, clock, ports, services, applied config')
    .option('--config <file>', 'host config', DEFAULT_AGENT_CONFIG)
    .option('--pre', 'pre-flight only: what must hold before the agent first starts')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (opts: { config: string; pre?: boolean; output: string }, self: Command) => {
      // An admin token is optional: with one, the server itself says whether this host is in sync.
      const globals = self.optsWithGlobals() as { token?: string };
      const items = await runChecks({ configFile: opts.config, pre: opts.pre === true, adminToken: globals.token ?? process.env['HOSTMESH_TOKEN'] });
      process.stdout.write(opts.output === 'json' ? JSON.stringify(items, null, 2) + '\n' : renderItems(items));
      const failed = items.filter((i) => i.status === 'fail');
      if (failed.length > 0) throw new CliError(`${failed.length} check${failed.length === 1 ? '' : 's'} failed: ${failed.map((i) => i.check).join(', ')}`);
    });
}
