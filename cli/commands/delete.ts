// `hostmesh delete KIND NAME`: declared resources, and hosts (removing a host from the mesh: its
// certificates stop being accepted). Instances belong to their agents, and tokens are revoked,
// not deleted (`hostmesh token revoke`).
import type { Command } from 'commander';
import { api } from '../api.js';
import { UsageError } from '../errors.js';
import { objectRef, resolveTarget } from '../targets.js';
import { print, withClient } from './common.js';

export function registerDelete(program: Command): void {
  program
    .command('delete')
    .description('delete a resource')
    .argument('<kind>', 'resource kind (services, routes, trafficpolicies, accesspolicies, mesh) or host')
    .argument('<name>', 'resource name')
    .action(async (kindText: string, name: string, _opts: unknown, self: Command) => {
      const target = resolveTarget(kindText);
      if (target.type === 'hosts') {
        const res = await withClient(self, (c) => api.deleteHost(c, name));
        print(`host/${name} removed from the mesh (revision ${res.revision}); to add it back, join it again with a new token\n`);
        return;
      }
      if (target.type !== 'resource') {
        const hint = target.type === 'tokens' ? 'hostmesh token revoke ID' : target.type === 'admin-tokens' ? 'hostmesh admin-token revoke ID' : null;
        throw new UsageError(`cannot delete ${target.type}${hint ? `: use ${hint}` : ': only declared resources can be deleted'}`);
      }
      const res = await withClient(self, (c) => api.deleteResource(c, target.kind, name));
      print(`${objectRef(target.kind, name)} deleted${res?.revision !== undefined ? ` (revision ${res.revision})` : ''}\n`);
    });
}
