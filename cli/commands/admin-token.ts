// `hostmesh admin-token create|list|revoke`: bearer tokens for the admin API (admin or viewer).
import { Option, type Command } from 'commander';
import type { AdminRole } from '../../shared/api-types.js';
import { api } from '../api.js';
import { renderFields, renderJson, renderTable, renderYaml } from '../output.js';
import { adminTokenColumns } from '../tables.js';
import { addOutputOption, note, outputOf, print, withClient } from './common.js';

export function registerAdminToken(program: Command): void {
  const adminToken = program.command('admin-token').description('tokens for the admin API');

  const create = adminToken
    .command('create')
    .description('make an admin API token (the secret is shown only now)')
    .addOption(new Option('--role <role>', 'admin may change things, viewer may only read').choices(['admin', 'viewer']).makeOptionMandatory())
    .option('--description <text>', 'a note for whoever lists tokens later');
  addOutputOption(create);
  create.action(async (opts: { role: AdminRole; description?: string }, self: Command) => {
    const output = outputOf(self);
    const body = opts.description === undefined ? { role: opts.role } : { role: opts.role, description: opts.description };
    const created = await withClient(self, (c) => api.createAdminToken(c, body));
    if (output === 'json') return print(renderJson(created));
    if (output === 'yaml') return print(renderYaml(created));
    print(
      renderFields([
        ['token', created.token],
        ['id', created.id],
        ['role', created.role],
        ['description', created.description ?? '-'],
      ]),
    );
  });

  const list = adminToken.command('list').description('list admin API tokens');
  addOutputOption(list);
  list.action(async (_opts: unknown, self: Command) => {
    const output = outputOf(self);
    const { items } = await withClient(self, (c) => api.listAdminTokens(c));
    if (output === 'json') return print(renderJson(items));
    if (output === 'yaml') return print(renderYaml(items));
    if (items.length === 0) return note('no admin tokens found');
    print(renderTable(adminTokenColumns(), items));
  });

  adminToken
    .command('revoke')
    .description('revoke an admin API token')
    .argument('<id>', 'token id (see admin-token list)')
    .action(async (id: string, _opts: unknown, self: Command) => {
      await withClient(self, (c) => api.revokeAdminToken(c, id));
      print(`admin token ${id} revoked\n`);
    });
}
