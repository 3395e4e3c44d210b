// `hostmesh get KIND [NAME]`: declared resources and the things the server observes, as a table
// for people or as JSON/YAML for scripts; resource YAML can be edited and applied back.
import { Option, type Command } from 'commander';
import type { ResourceKind } from '../../shared/resources.js';
import { api } from '../api.js';
import type { ApiClient } from '../client.js';
import { CliError, UsageError } from '../errors.js';
import { toManifest } from '../manifest.js';
import { renderJson, renderTable, renderYaml, renderYamlStream, type Column, type OutputFormat } from '../output.js';
import { adminTokenColumns, auditColumns, hostColumns, instanceColumns, resourceColumns, tokenColumns } from '../tables.js';
import { knownKinds, plural, resolveTarget } from '../targets.js';
import { addOutputOption, note, outputOf, print, withClient } from './common.js';

interface GetOptions {
  limit?: string;
  kind?: string;
}

export function registerGet(program: Command): void {
  const cmd = program
    .command('get')
    .description('list or show resources, hosts, instances, tokens or audit entries')
    .argument('<kind>', `what to get: ${knownKinds().join(', ')} (singular and short forms work too)`)
    .argument('[name]', 'one object by name (for instances: the service whose instances to list)')
    .addOption(new Option('--limit <n>', 'audit: how many entries, newest first').default('50'))
    .addOption(new Option('--kind <kind>', 'audit: only entries about this resource kind'));
  addOutputOption(cmd);
  cmd.action(async (kindText: string, name: string | undefined, opts: GetOptions, self: Command) => {
    const output = outputOf(self);
    const target = resolveTarget(kindText);
    await withClient(self, async (c) => {
      switch (target.type) {
        case 'resource':
          return print(await getResources(c, target.kind, name, output));
        case 'hosts': {
          const items = name ? [await api.getHost(c, name)] : (await api.listHosts(c)).items;
          return print(render(output, items, hostColumns(), 'hosts', name !== undefined));
        }
        case 'instances': {
          const items = (await api.listInstances(c, name)).items;
          return print(render(output, items, instanceColumns(), name ? `instances of ${name}` : 'instances', false));
        }
        case 'tokens': {
          const items = (await api.listTokens(c)).items;
          return print(render(output, pick(items, name, 'join token'), tokenColumns(), 'join tokens', name !== undefined));
        }
        case 'admin-tokens': {
          const items = (await api.listAdminTokens(c)).items;
          return print(render(output, pick(items, name, 'admin token'), adminTokenColumns(), 'admin tokens', name !== undefined));
        }
        case 'audit': {
          if (name) throw new UsageError('get audit takes no name; use --kind to filter by resource kind');
          const items = (await api.listAudit(c, { limit: parseLimit(opts.limit), kind: auditKind(opts.kind) })).items;
          return print(render(output, items, auditColumns(), 'audit entries', false));
        }
      }
    });
  });
}

async function getResources(c: ApiClient, kind: ResourceKind, name: string | undefined, output: OutputFormat): Promise<string> {
  if (name !== undefined) {
    const r = await api.getResource(c, kind, name);
    if (output === 'yaml') return renderYaml(toManifest(r));
    if (output === 'json') return renderJson(toManifest(r));
    return renderTable(resourceColumns(kind), [r]);
  }
  const { items } = await api.listResources(c, kind);
  // A `---` stream of documents, the way manifests are written, so the output applies back as is.
  if (output === 'yaml') return renderYamlStream(items.map(toManifest));
  if (output === 'json') return renderJson(items.map(toManifest));
  return tableOrNote(resourceColumns(kind), items, plural(kind));
}

/** One object prints as itself; a list prints as an array so `jq '.[]'` and `apply -f` both work. */
function render<T>(output: OutputFormat, items: T[], columns: Column<T>[], what: string, single: boolean): string {
  if (output === 'json') return renderJson(single ? items[0] : items);
  if (output === 'yaml') return renderYaml(single ? items[0] : items);
  return tableOrNote(columns, items, what);
}

function tableOrNote<T>(columns: Column<T>[], items: T[], what: string): string {
  if (items.length === 0) {
    note(`no ${what} found`);
    return '';
  }
  return renderTable(columns, items);
}

function pick<T extends { id: string }>(items: T[], id: string | undefined, what: string): T[] {
  if (id === undefined) return items;
  const found = items.find((t) => t.id === id);
  if (!found) throw new CliError(`${what} "${id}" not found`);
  return [found];
}

function parseLimit(text: string | undefined): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--limit must be a positive whole number, not "${text}"`);
  return n;
}

function auditKind(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const t = resolveTarget(text);
  if (t.type !== 'resource') throw new UsageError(`--kind must be a resource kind, not "${text}"`);
  return t.kind;
}
