// `hostmesh agent`: run the data plane on this host. The agent's modules are imported only when the
// command runs, so the other commands start fast.
import { CommanderError, type Command } from 'commander';
import { isHmError } from '../shared/errors.js';
import type { HostConfig } from '../shared/host-config.js';
import { loadHostConfig, type AgentFlags } from './config/load.js';

export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the hostmesh agent (data plane) on this host')
    .option('--config <file>', 'host config YAML, e.g. /etc/hostmesh/agent.yaml (flags override its fields)')
    .option('--server <url>', 'https://HOST:PORT of the hostmesh server')
    .option('--token <token>', 'join token (needed only until this host has joined)')
    .option('--ca-fingerprint <sha256:hex>', 'fingerprint of the mesh root the server must chain to')
    .option('--name <name>', 'this host\'s name (default: the hostname)')
    .option('--address <addr>', 'address other agents dial (default: the primary IPv4)')
    .option('--state-dir <dir>', 'keys, certificates and the last applied config (default /var/lib/hostmesh)')
    .option('--inbound <host:port>', 'inbound mTLS listener (default <address>:15443)')
    .option('--admin <host:port>', '/metrics, /readyz and /config_dump (default 127.0.0.1:15090)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace')
    .action(async (_opts: unknown, self: Command) => {
      // --server and --token may also be program-wide options, which commander hands to the
      // program even when they follow `agent`; optsWithGlobals sees them either way.
      const config = configOrExit(self.optsWithGlobals() as AgentFlags);
      const { runAgent } = await import('./main.js');
      await runAgent(config);
    });
}

function configOrExit(flags: AgentFlags): HostConfig {
  try {
    return loadHostConfig(flags);
  } catch (e) {
    if (!isHmError(e) || e.code !== 'HM_ERR_CONFIG') throw e;
    process.stderr.write(`hostmesh agent: ${e.message}\n`);
    // The CLI's main maps a CommanderError to its exit code without printing anything more.
    throw new CommanderError(2, 'hostmesh.agentConfig', e.message);
  }
}
