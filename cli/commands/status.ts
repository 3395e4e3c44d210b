// `hostmesh status`: the registry revision and, per host, whether its agent has caught up.
import type { Command } from 'commander';
import type { StatusInfo } from '../../shared/api-types.js';
import { api } from '../api.js';
import { renderFields, renderJson, renderTable, renderYaml } from '../output.js';
import { statusHostColumns } from '../tables.js';
import { ago, shortDuration } from '../time-format.js';
import { addOutputOption, outputOf, print, withClient } from './common.js';

export function registerStatus(program: Command): void {
  const cmd = program.command('status').description('show the registry revision and which hosts are behind');
  addOutputOption(cmd);
  cmd.action(async (_opts: unknown, self: Command) => {
    const output = outputOf(self);
    let url = '';
    const status = await withClient(self, (c) => {
      url = c.url;
      return api.status(c);
    });
    if (output === 'json') return print(renderJson(status));
    if (output === 'yaml') return print(renderYaml(status));
    print(renderStatus(status, url));
  });
}

export function renderStatus(s: StatusInfo, url: string, now = Date.now()): string {
  const connected = s.hosts.filter((h) => h.connected).length;
  const behind = s.hosts.filter((h) => h.behind).length;
  const counts = Object.entries(s.counts ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const started = Date.parse(s.startedAt);
  let out = renderFields([
    ['server', `${url} (version ${s.version}${Number.isNaN(started) ? '' : `, up ${shortDuration(now - started)}`})`],
    ['trust domain', s.trustDomain],
    ['CA fingerprint', s.caFingerprint ?? '-'],
    ['revision', String(s.revision)],
    ['resources', counts || '-'],
    ['hosts', `${s.hosts.length} (${connected} connected, ${behind} behind)`],
  ]);
  if (s.hosts.length === 0) return `${out}\nno hosts have joined yet (make a join token with: hostmesh token create)\n`;
  out += '\n' + renderTable(statusHostColumns(s.revision, now), s.hosts);
  const nacks = s.hosts.filter((h) => h.lastNack);
  if (nacks.length > 0) {
    out += '\n' + nacks.map((h) => `${h.name}: last nack of revision ${h.lastNack!.revision} ${ago(h.lastNack!.at, now)}: ${h.lastNack!.error}\n`).join('');
  }
  return out;
}
