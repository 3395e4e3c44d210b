// `hostmesh stat [SERVICE] [--edges]`: success rate, requests per second and latency per service (or
// per caller → callee edge) over the last minute, from the agents' summaries, like `linkerd viz stat`.
import type { Command } from 'commander';
import type { EdgeStats, GoldenSignals, ServiceStats, StatsView } from '../../shared/golden.js';
import { api } from '../api.js';
import { renderJson, renderTable, renderYaml, type Column } from '../output.js';
import { addOutputOption, note, outputOf, print, withClient } from './common.js';

interface StatOptions {
  edges?: boolean;
  window?: string;
}

export function registerStat(program: Command): void {
  const cmd = program
    .command('stat')
    .description('golden metrics per service (or per edge with --edges): success rate, requests/s, p50/p95/p99 latency')
    .argument('[service]', 'only this service (and, with --edges, the calls to and from it)')
    .option('--edges', 'one row per caller → callee edge instead of per service')
    .option('--window <duration>', 'how far back to look, 10s to 10m', '1m');
  addOutputOption(cmd);
  cmd.action(async (service: string | undefined, opts: StatOptions, self: Command) => {
    const output = outputOf(self);
    const view = await withClient(self, (c) => api.stats(c, { ...(service ? { service } : {}), ...(opts.window ? { window: opts.window } : {}) }));
    if (output === 'json') return print(renderJson(view));
    if (output === 'yaml') return print(renderYaml(view));
    const text = renderStats(view, Boolean(opts.edges));
    if (text === null) return note(`no traffic seen in the last ${view.windowSeconds} s${service ? ` for ${service}` : ''} (agents send summaries every few seconds)`);
    print(text);
  });
}

const pct = (g: GoldenSignals): string => (g.successRate === null ? '-' : `${(g.successRate * 100).toFixed(2)}%`);
const ms = (v: number | null): string => (v === null ? '-' : `${v < 10 ? v.toFixed(2) : v.toFixed(0)}ms`);
const rps = (g: GoldenSignals): string => g.requestsPerSecond.toFixed(g.requestsPerSecond < 10 ? 2 : 1);

function goldenColumns<T extends GoldenSignals>(): Column<T>[] {
  return [
    { header: 'SUCCESS', value: pct },
    { header: 'RPS', value: rps },
    { header: 'REQUESTS', value: (g) => String(g.requests) },
    { header: 'P50', value: (g) => ms(g.p50Ms) },
    { header: 'P95', value: (g) => ms(g.p95Ms) },
    { header: 'P99', value: (g) => ms(g.p99Ms) },
  ];
}

/** The table, or null when there is nothing to show. */
export function renderStats(view: StatsView, edges: boolean): string | null {
  if (edges) {
    if (view.edges.length === 0) return null;
    const cols: Column<EdgeStats>[] = [{ header: 'FROM', value: (e) => e.source }, { header: 'TO', value: (e) => e.destination }, ...goldenColumns<EdgeStats>()];
    return renderTable(cols, view.edges);
  }
  if (view.services.length === 0) return null;
  const cols: Column<ServiceStats>[] = [
    { header: 'SERVICE', value: (s) => s.service },
    ...goldenColumns<ServiceStats>(),
    // Which agents measured it: the service's own (inbound) or only its callers (outbound).
    { header: 'SEEN-BY', value: (s) => (s.measuredAt === 'inbound' ? 'server' : 'callers') },
  ];
  return renderTable(cols, view.services);
}
