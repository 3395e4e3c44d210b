// `hostmesh token create|list|revoke`: join tokens, which let an agent get its first certificate.
import type { Command } from 'commander';
import { parseDuration } from '../../shared/duration.js';
import type { JoinTokenCreated } from '../../shared/api-types.js';
import { api, type NewJoinToken } from '../api.js';
import type { ApiClient } from '../client.js';
import { INSTALL_INFO_PATH, installCommand, type InstallInfo } from '../../shared/install.js';
import { UsageError } from '../errors.js';
import { renderFields, renderJson, renderTable, renderYaml } from '../output.js';
import { tokenColumns } from '../tables.js';
import { until } from '../time-format.js';
import { addOutputOption, note, outputOf, print, withClient } from './common.js';

interface CreateOptions {
  ttl?: string;
  singleUse?: boolean;
  services?: string;
  description?: string;
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('join tokens for agents');

  const create = token
    .command('create')
    .description('make a join token (the secret is shown only now)')
    .option('--ttl <duration>', 'how long the token is valid, e.g. 30m, 1h, 7d (server default if unset)')
    .option('--single-use', 'the token works for one join only')
    .option('--services <a,b>', 'only hosts registering these services may join with it')
    .option('--description <text>', 'a note for whoever lists tokens later');
  addOutputOption(create);
  create.action(async (opts: CreateOptions, self: Command) => {
    const output = outputOf(self);
    const body = joinTokenRequest(opts);
    const created = await withClient(self, async (c) => {
      const t = await api.createToken(c, body);
      return { ...t, installCommand: t.installCommand ?? (await installCommandFor(c, t.token)) };
    });
    if (output === 'json') return print(renderJson(created));
    if (output === 'yaml') return print(renderYaml(created));
    print(renderCreatedToken(created));
  });

  const list = token.command('list').description('list join tokens');
  addOutputOption(list);
  list.action(async (_opts: unknown, self: Command) => {
    const output = outputOf(self);
    const { items } = await withClient(self, (c) => api.listTokens(c));
    if (output === 'json') return print(renderJson(items));
    if (output === 'yaml') return print(renderYaml(items));
    if (items.length === 0) return note('no join tokens found');
    print(renderTable(tokenColumns(), items));
  });

  token
    .command('revoke')
    .description('revoke a join token; hosts that already joined keep their certificates')
    .argument('<id>', 'token id (see token list)')
    .action(async (id: string, _opts: unknown, self: Command) => {
      await withClient(self, (c) => api.revokeToken(c, id));
      print(`join token ${id} revoked\n`);
    });
}

export function joinTokenRequest(opts: CreateOptions): NewJoinToken {
  const body: NewJoinToken = {};
  if (opts.ttl !== undefined) {
    try {
      if (parseDuration(opts.ttl) <= 0) throw new RangeError('must be more than 0');
    } catch (e) {
      throw new UsageError(`--ttl: ${(e as Error).message}`);
    }
    body.ttl = opts.ttl;
  }
  if (opts.singleUse) body.singleUse = true;
  if (opts.services !== undefined) {
    const services = opts.services
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    if (services.length === 0) throw new UsageError('--services needs at least one service name');
    body.services = services;
  }
  if (opts.description !== undefined) body.description = opts.description;
  return body;
}

export function renderCreatedToken(t: JoinTokenCreated & { installCommand?: string }, now = Date.now()): string {
  let out = renderFields([
    ['token', t.token],
    ['id', t.id],
    ['expires', `${t.expiresAt} (${until(t.expiresAt, now)})`],
    ['single use', t.singleUse ? 'yes' : 'no'],
    ['services', t.services && t.services.length > 0 ? t.services.join(', ') : 'any'],
    ['description', t.description ?? '-'],
  ]);
  if (t.installCommand) out += `\ninstall an agent on a host with:\n  ${t.installCommand}\n`;
  return out;
}

/** The one-line install for this token, from the server's own address and key pin; none from a server too old to serve the installer. */
async function installCommandFor(c: ApiClient, token: string): Promise<string | undefined> {
  try {
    const info = await c.get<InstallInfo>(INSTALL_INFO_PATH);
    return info.pin ? installCommand(info, token) : undefined;
  } catch {
    return undefined;
  }
}
