// From raw runs to the report: medians per point, figures relative to direct and to the nginx
// pair, the targets of issue 4 with PASS/FAIL, a text table and the JSON document.
import type { CpuUse, MemoryBreakdown, ProcFigures } from './sample.js';
import type { WrkResult } from './wrk.js';

export type Layer = 'tcp' | 'http';
/** `mesh-nomet`: the same mesh with `metrics: { traffic: false, summaries: false }` on both agents (nothing recorded per request), to measure what metrics cost. */
export type Variant = 'direct' | 'nginx' | 'mesh' | 'mesh-nomet';
export const LAYERS: readonly Layer[] = ['tcp', 'http'];
/** What runs by default. */
export const VARIANTS: readonly Variant[] = ['direct', 'nginx', 'mesh'];
/** What --only accepts. */
export const ALL_VARIANTS: readonly Variant[] = ['direct', 'nginx', 'mesh', 'mesh-nomet'];
/** Issue 5: metrics may cost at most this share of the mesh's throughput. */
export const METRICS_COST_LIMIT = 0.05;

export interface PointRun {
  run: number;
  layer: Layer;
  conns: number;
  variant: Variant;
  startedAt: string;
  wrk: WrkResult;
  /** CPU and RSS of the proxies (nginx workers or agents) over the measured window. */
  procs: ProcFigures[];
  /** How busy wrk's CPU and the proxies' CPU were over the window. */
  cpus: CpuUse[];
  /** CPU cores on wrk's CPU used by processes other than wrk: noise. */
  loadCpuOtherCores: number | null;
  /** CPU cores on the proxies' CPU used by processes that are not the benchmark's: noise. */
  proxyCpuOtherCores: number | null;
  /** The busiest foreign processes during the window (any CPU). */
  busiestOthers: Array<{ pid: number; comm: string; cores: number }>;
  /** Why this run's figures are suspect (a process died, the variant was unavailable…). */
  note: string | null;
}

export interface ProcSummary {
  role: string;
  what: string;
  /** Median CPU cores busy over the window. */
  cpuCores: number | null;
  /** Median of (cores ÷ (req/s ÷ 1000)): CPU cores per 1000 req/s, i.e. CPU-seconds per 1000 requests. */
  cpuPer1kRps: number | null;
  /** Highest RSS sampled in any run of this point. */
  rssPeakMB: number | null;
}

export interface PointSummary {
  layer: Layer;
  conns: number;
  variant: Variant;
  runs: number;
  /** Medians over runs. req/s counts 2xx/3xx responses only. */
  rps: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Median of this variant minus median of direct, same layer and connections. */
  addedP50Ms: number | null;
  addedP99Ms: number | null;
  /** mesh rows: median mesh req/s ÷ median nginx-pair req/s. */
  ratioVsNginx: number | null;
  /** mesh rows, when mesh-nomet ran: 1 − median mesh req/s ÷ median mesh-nomet req/s (the share of throughput metrics cost). */
  metricsCost?: number | null;
  /** Summed over all runs of the point. */
  errors: number;
  errorBreakdown: { connect: number; read: number; write: number; timeout: number; non2xx: number; failedRuns: number };
  procs: ProcSummary[];
  /** Medians: wrk's own CPU cores; other processes' cores on wrk's CPU and on the proxies' CPU (noise). */
  wrkCpuCores: number | null;
  loadCpuOtherCores: number | null;
  proxyCpuOtherCores: number | null;
  notes: string[];
}

export type Verdict = 'PASS' | 'FAIL' | 'N/A';

export interface TargetResult {
  target: string;
  measured: string;
  verdict: Verdict;
}

export interface MeshInfo {
  enabled: boolean;
  available: boolean;
  reason: string | null;
  notes: string[];
  idleRssMB: { A: number | null; B: number | null };
  idleMemory: { A: MemoryBreakdown | null; B: MemoryBreakdown | null };
}

export interface BenchReport {
  meta: Record<string, unknown>;
  mesh: MeshInfo;
  points: PointSummary[];
  targets: TargetResult[];
  /** True when the hard timeout or a signal cut the schedule short. */
  partial: boolean;
  runs: PointRun[];
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const nums = (xs: ReadonlyArray<number | null>): number[] => xs.filter((x): x is number => x !== null && Number.isFinite(x));

export function summarize(runs: readonly PointRun[], order: { conns: readonly number[]; layers: readonly Layer[]; variants: readonly Variant[] }): PointSummary[] {
  const out: PointSummary[] = [];
  for (const conns of order.conns) {
    for (const layer of order.layers) {
      for (const variant of order.variants) {
        const rs = runs.filter((r) => r.conns === conns && r.layer === layer && r.variant === variant);
        if (rs.length === 0) continue;
        const eb = { connect: 0, read: 0, write: 0, timeout: 0, non2xx: 0, failedRuns: 0 };
        for (const r of rs) {
          eb.connect += r.wrk.socketErrors.connect;
          eb.read += r.wrk.socketErrors.read;
          eb.write += r.wrk.socketErrors.write;
          eb.timeout += r.wrk.socketErrors.timeout;
          eb.non2xx += r.wrk.non2xx;
          if (r.wrk.failure) eb.failedRuns++;
        }
        const roles = [...new Set(rs.flatMap((r) => r.procs.map((p) => p.role)))];
        const procs: ProcSummary[] = roles.map((role) => {
          const per = rs.map((r) => ({ p: r.procs.find((p) => p.role === role), rps: r.wrk.okRps }));
          return {
            role,
            what: per.find((x) => x.p)?.p?.what ?? role,
            cpuCores: median(nums(per.map((x) => x.p?.cpuCores ?? null))),
            cpuPer1kRps: median(nums(per.map((x) => (x.p?.cpuCores != null && x.rps > 0 ? x.p.cpuCores / (x.rps / 1000) : null)))),
            rssPeakMB: nums(per.map((x) => x.p?.rssPeakMB ?? null)).reduce<number | null>((m, v) => (m === null || v > m ? v : m), null),
          };
        });
        const notes = [...new Set(rs.flatMap((r) => [r.note, r.wrk.failure].filter((n): n is string => !!n)))];
        out.push({
          layer,
          conns,
          variant,
          runs: rs.length,
          rps: median(rs.map((r) => r.wrk.okRps)),
          p50Ms: median(nums(rs.map((r) => r.wrk.p50Ms))),
          p99Ms: median(nums(rs.map((r) => r.wrk.p99Ms))),
          addedP50Ms: null,
          addedP99Ms: null,
          ratioVsNginx: null,
          errors: rs.reduce((s, r) => s + r.wrk.errors, 0),
          errorBreakdown: eb,
          procs,
          wrkCpuCores: median(nums(rs.map((r) => r.wrk.cpuCores))),
          loadCpuOtherCores: median(nums(rs.map((r) => r.loadCpuOtherCores))),
          proxyCpuOtherCores: median(nums(rs.map((r) => r.proxyCpuOtherCores))),
          notes,
        });
      }
    }
  }
  for (const p of out) {
    const direct = out.find((d) => d.variant === 'direct' && d.layer === p.layer && d.conns === p.conns);
    const nginx = out.find((d) => d.variant === 'nginx' && d.layer === p.layer && d.conns === p.conns);
    if (direct && p.variant !== 'direct') {
      p.addedP50Ms = p.p50Ms !== null && direct.p50Ms !== null ? p.p50Ms - direct.p50Ms : null;
      p.addedP99Ms = p.p99Ms !== null && direct.p99Ms !== null ? p.p99Ms - direct.p99Ms : null;
    }
    if (nginx && p.variant === 'mesh' && nginx.rps) p.ratioVsNginx = (p.rps ?? 0) / nginx.rps;
    const nomet = out.find((d) => d.variant === 'mesh-nomet' && d.layer === p.layer && d.conns === p.conns);
    if (nomet && p.variant === 'mesh' && nomet.rps) p.metricsCost = 1 - (p.rps ?? 0) / nomet.rps;
  }
  return out;
}

// ---- targets (issue 4) ----

const fmtMs = (v: number | null): string => (v === null ? 'n/a' : `${v >= 0 ? '+' : ''}${v.toFixed(3)} ms`);

/** Above this many cores of other processes on a benchmark CPU, a point's figures are disturbed. */
export const NOISE_LIMIT = 0.05;

export function noiseOf(p: PointSummary): number {
  return Math.max(p.loadCpuOtherCores ?? 0, p.proxyCpuOtherCores ?? 0);
}

export function evaluateTargets(points: readonly PointSummary[], mesh: MeshInfo, conns: readonly number[]): TargetResult[] {
  const results = evaluate(points, mesh, conns);
  // Say so when the points behind a verdict were measured on a busy machine.
  const noisy = points.some((p) => noiseOf(p) > NOISE_LIMIT);
  const timing = (t: TargetResult): boolean => /throughput|p50|p99/.test(t.target);
  return noisy ? results.map((t) => (t.verdict === 'N/A' || !timing(t) ? t : { ...t, measured: `${t.measured} [machine busy: noisy]` })) : results;
}

function evaluate(points: readonly PointSummary[], mesh: MeshInfo, conns: readonly number[]): TargetResult[] {
  const out: TargetResult[] = [];
  const pt = (variant: Variant, layer: Layer, c: number): PointSummary | undefined => points.find((p) => p.variant === variant && p.layer === layer && p.conns === c);
  const meshMissing = (): string | null => (!mesh.enabled ? 'mesh not run (--only)' : !mesh.available ? `mesh unavailable: ${mesh.reason ?? '?'}` : null);
  const noMesh = (target: string): void => {
    // Not measured on purpose → N/A; the mesh failed to come up → the target is not met.
    out.push({ target, measured: mesh.enabled ? 'mesh unavailable (reason under "Mesh" above)' : 'mesh not run (--only)', verdict: mesh.enabled ? 'FAIL' : 'N/A' });
  };
  const loadConns = [16, 64].filter((c) => conns.includes(c));

  for (const [layer, min] of [['tcp', 0.8], ['http', 0.5]] as const) {
    const target = `${layer} throughput ≥ ${min.toFixed(2)}× nginx pair at 16 and 64 conns`;
    if (meshMissing()) {
      noMesh(target);
      continue;
    }
    const parts: string[] = [];
    let verdict: Verdict = loadConns.length ? 'PASS' : 'N/A';
    for (const c of loadConns) {
      const m = pt('mesh', layer, c);
      const r = m?.ratioVsNginx ?? null;
      parts.push(`c=${c}: ${r === null ? 'n/a' : `${r.toFixed(2)}×`}`);
      if (r === null) verdict = verdict === 'PASS' ? 'N/A' : verdict;
      else if (r < min) verdict = 'FAIL';
    }
    out.push({ target, measured: parts.join(', ') || 'conns 16/64 not measured', verdict });
  }

  for (const [layer, max] of [['tcp', 0.15], ['http', 0.25]] as const) {
    const target = `${layer} added p50 at 1 conn ≤ ${max.toFixed(2)} ms`;
    if (meshMissing()) {
      noMesh(target);
      continue;
    }
    const m = pt('mesh', layer, 1);
    if (!m) out.push({ target, measured: 'conns 1 not measured', verdict: 'N/A' });
    else if (m.addedP50Ms === null) out.push({ target, measured: m.rps ? 'n/a (no direct baseline)' : 'no successful request', verdict: m.rps ? 'N/A' : 'FAIL' });
    else out.push({ target, measured: fmtMs(m.addedP50Ms), verdict: m.addedP50Ms <= max ? 'PASS' : 'FAIL' });
  }

  for (const layer of LAYERS) {
    const target = `${layer} added p99 at 16/64 conns ≤ 2× nginx pair's`;
    if (meshMissing()) {
      noMesh(target);
      continue;
    }
    const parts: string[] = [];
    let verdict: Verdict = loadConns.length ? 'PASS' : 'N/A';
    for (const c of loadConns) {
      const m = pt('mesh', layer, c);
      const n = pt('nginx', layer, c);
      if (!m || m.addedP99Ms === null || !n || n.addedP99Ms === null) {
        parts.push(`c=${c}: n/a`);
        if (m && !m.rps) verdict = 'FAIL';
        else if (verdict === 'PASS') verdict = 'N/A';
        continue;
      }
      if (n.addedP99Ms <= 0) {
        // The pair's p99 at or below direct's is noise: there is no limit to compare with.
        parts.push(`c=${c}: ${fmtMs(m.addedP99Ms)}, no limit (nginx pair's added p99 ${fmtMs(n.addedP99Ms)} ≤ 0)`);
        if (verdict === 'PASS') verdict = 'N/A';
        continue;
      }
      const limit = 2 * n.addedP99Ms;
      parts.push(`c=${c}: ${fmtMs(m.addedP99Ms)} vs limit ${fmtMs(limit)}`);
      if (m.addedP99Ms > limit) verdict = 'FAIL';
    }
    out.push({ target, measured: parts.join(', ') || 'conns 16/64 not measured', verdict });
  }

  {
    const target = 'agent RSS idle ≤ 50 MB';
    if (meshMissing()) noMesh(target);
    else {
      const { A, B } = mesh.idleRssMB;
      const ok = A !== null && B !== null;
      out.push({ target, measured: `A ${A?.toFixed(1) ?? 'n/a'} MB, B ${B?.toFixed(1) ?? 'n/a'} MB`, verdict: !ok ? 'N/A' : Math.max(A, B) <= 50 ? 'PASS' : 'FAIL' });
    }
  }
  {
    const target = 'agent RSS under load ≤ 80 MB';
    if (meshMissing()) noMesh(target);
    else {
      const peak = (role: string): number | null =>
        nums(points.filter((p) => p.variant === 'mesh').map((p) => p.procs.find((x) => x.role === role)?.rssPeakMB ?? null)).reduce<number | null>((m, v) => (m === null || v > m ? v : m), null);
      const A = peak('A');
      const B = peak('B');
      const ok = A !== null && B !== null;
      out.push({ target, measured: `peak A ${A?.toFixed(1) ?? 'n/a'} MB, B ${B?.toFixed(1) ?? 'n/a'} MB`, verdict: !ok ? 'N/A' : Math.max(A, B) <= 80 ? 'PASS' : 'FAIL' });
    }
  }
  {
    const target = 'zero errors (mesh, every point and run)';
    if (meshMissing()) noMesh(target);
    else {
      const mp = points.filter((p) => p.variant === 'mesh');
      const errs = mp.reduce((s, p) => s + p.errors, 0);
      const bad = mp.filter((p) => p.errors > 0).map((p) => `${p.layer}/c${p.conns}`);
      out.push({ target, measured: errs === 0 ? '0 errors' : `${errs} errors (${bad.join(', ')})`, verdict: mp.length === 0 ? 'N/A' : errs === 0 ? 'PASS' : 'FAIL' });
    }
  }
  // Issue 5, only when the mesh without traffic metrics was measured (--metrics-cost).
  const costed = points.filter((p) => p.variant === 'mesh' && p.metricsCost !== undefined && p.metricsCost !== null);
  if (costed.length) {
    const limit = METRICS_COST_LIMIT * 100;
    const worst = Math.max(...costed.map((p) => p.metricsCost as number));
    out.push({
      target: `metrics cost < ${limit} % of mesh throughput (vs metrics.traffic and .summaries false)`,
      measured: costed.map((p) => `${p.layer}/c${p.conns} ${((p.metricsCost as number) * 100).toFixed(1)} %`).join(', '),
      verdict: worst < METRICS_COST_LIMIT ? 'PASS' : 'FAIL',
    });
  }
  return out;
}

// ---- text ----

function pad(s: string, w: number, left = false): string {
  return left ? s.padEnd(w) : s.padStart(w);
}

const f = {
  int: (v: number | null): string => (v === null ? '-' : Math.round(v).toLocaleString('en-US')),
  ms: (v: number | null): string => (v === null ? '-' : v.toFixed(3)),
  add: (v: number | null): string => (v === null ? '-' : `${v >= 0 ? '+' : ''}${v.toFixed(3)}`),
  ratio: (v: number | null): string => (v === null ? '-' : `${v.toFixed(2)}×`),
  cpu: (v: number | null): string => (v === null ? '-' : v.toFixed(3)),
  mb: (v: number | null): string => (v === null ? '-' : v.toFixed(1)),
  cpu2: (v: number | null): string => (v === null ? '-' : v.toFixed(2)),
};

export function renderTable(report: BenchReport): string {
  const lines: string[] = [];
  const m = report.meta;
  lines.push(`hostmesh data-plane benchmark — ${String(m['runs'])} run(s) × ${String(m['durationS'])} s per point (+${String(m['warmupS'])} s warm-up), medians${report.partial ? '  [PARTIAL: cut short]' : ''}`);
  lines.push(`wrk ${String(m['wrk'])} -t1 on CPU ${String(m['loadCpu'])}; upstream nginx, nginx pair and mesh agents on CPU ${String(m['proxyCpu'])}; ${String(m['nginx'])}; node ${String(m['node'])}; mTLS TLS 1.3, ECDSA P-256, client certs verified`);
  lines.push('');
  const cols: Array<[string, number, boolean?]> = [
    ['layer', 5, true], ['conns', 5], ['variant', 10, true], ['req/s', 9], ['×nginx', 6], ['p50 ms', 7], ['p99 ms', 7], ['+p50 ms', 8], ['+p99 ms', 8],
    ['errors', 7], ['A cpu/1k', 8], ['B cpu/1k', 8], ['A rss MB', 8], ['B rss MB', 8], ['wrk cpu', 7], ['noise', 9],
  ];
  const header = cols.map(([n, w, l]) => pad(n, w, l)).join('  ');
  lines.push(header);
  lines.push('-'.repeat(header.length));
  let prev = '';
  for (const p of report.points) {
    const key = `${p.conns}/${p.layer}`;
    if (prev && key !== prev) lines.push('');
    prev = key;
    const a = p.procs.find((x) => x.role === 'A');
    const b = p.procs.find((x) => x.role === 'B');
    const row = [
      p.layer, String(p.conns), p.variant, f.int(p.rps), f.ratio(p.ratioVsNginx), f.ms(p.p50Ms), f.ms(p.p99Ms), f.add(p.addedP50Ms), f.add(p.addedP99Ms),
      p.errorBreakdown.failedRuns ? `${p.errors}!` : String(p.errors), f.cpu(a?.cpuPer1kRps ?? null), f.cpu(b?.cpuPer1kRps ?? null), f.mb(a?.rssPeakMB ?? null), f.mb(b?.rssPeakMB ?? null),
      f.cpu2(p.wrkCpuCores), `${f.cpu2(p.loadCpuOtherCores)}/${f.cpu2(p.proxyCpuOtherCores)}`,
    ];
    lines.push(row.map((v, i) => pad(v, cols[i]![1], cols[i]![2])).join('  '));
  }
  lines.push('');
  lines.push('req/s: 2xx responses per second. +p50/+p99: minus direct at the same layer and conns. ×nginx: mesh ÷ nginx pair.');
  if (report.points.some((p) => p.variant === 'mesh-nomet')) {
    lines.push('mesh-nomet: the same mesh with metrics.traffic and metrics.summaries false on both agents. Metrics cost (1 − mesh ÷ mesh-nomet req/s): ' +
      report.points.filter((p) => p.metricsCost != null).map((p) => `${p.layer}/c${p.conns} ${((p.metricsCost as number) * 100).toFixed(1)} %`).join(', ') + '.');
  }
  lines.push('A/B: nginx A/B workers on nginx rows, agent A (outbound)/agent B (inbound) on mesh rows. cpu/1k: CPU cores per 1000 req/s');
  lines.push('(= CPU-seconds per 1000 requests). rss: peak sampled during the point. errors: socket errors + non-2xx over all runs; "!" = a run failed.');
  lines.push(`wrk cpu: cores wrk used (near 1.00 = the load generator is the limit). noise: cores used by processes that are not the`);
  lines.push(`benchmark's, on CPU ${String(m['loadCpu'])}/CPU ${String(m['proxyCpu'])} (approx.); above ~0.05 the machine was not quiet and the figures are disturbed.`);
  const noisy = report.points.filter((p) => noiseOf(p) > NOISE_LIMIT);
  if (noisy.length) {
    lines.push(`WARNING: other processes used the benchmark's CPUs during ${noisy.length} of ${report.points.length} points (up to ${Math.max(...noisy.map(noiseOf)).toFixed(2)} cores): run again on a quiet machine for figures that compare.`);
    const worst = new Map<string, number>();
    for (const r of report.runs) for (const o of r.busiestOthers) worst.set(`${o.comm}[${o.pid}]`, Math.max(worst.get(`${o.comm}[${o.pid}]`) ?? 0, o.cores));
    const top = [...worst].sort((a, b) => b[1] - a[1]).slice(0, 5);
    if (top.length) lines.push(`  busiest other processes (peak cores in a point): ${top.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
  }

  const withErrors = report.points.filter((p) => p.errors > 0 || p.notes.length > 0);
  if (withErrors.length) {
    lines.push('');
    lines.push('Errors and notes:');
    for (const p of withErrors) {
      const e = p.errorBreakdown;
      lines.push(`  ${p.variant} ${p.layer} c=${p.conns}: ${p.errors} errors (connect ${e.connect}, read ${e.read}, write ${e.write}, timeout ${e.timeout}, non-2xx ${e.non2xx}, failed runs ${e.failedRuns})`);
      for (const n of p.notes) lines.push(`    - ${oneLine(n, 300)}`);
    }
  }

  lines.push('');
  lines.push('Mesh:');
  if (!report.mesh.enabled) lines.push('  not run (--only)');
  else if (!report.mesh.available) lines.push(`  UNAVAILABLE: ${oneLine(report.mesh.reason ?? '?', 1200)}`);
  else {
    lines.push(`  idle RSS: agent A ${f.mb(report.mesh.idleRssMB.A)} MB, agent B ${f.mb(report.mesh.idleRssMB.B)} MB`);
    const { A, B } = report.mesh.idleMemory;
    if (A && B) {
      lines.push(`    of which anonymous (the agent's own heap): A ${f.mb(A.anonMB)} MB, B ${f.mb(B.anonMB)} MB; file-backed (node binary and libraries, shared): A ${f.mb(A.fileMB)} MB, B ${f.mb(B.fileMB)} MB`);
      lines.push(`    PSS (shared pages divided among the processes mapping them): A ${f.mb(A.pssMB)} MB, B ${f.mb(B.pssMB)} MB`);
    }
  }
  for (const n of report.mesh.notes) lines.push(`  - ${oneLine(n, 400)}`);

  lines.push('');
  lines.push('Targets (issue 4):');
  const tw = Math.max(...report.targets.map((t) => t.target.length));
  for (const t of report.targets) lines.push(`  ${pad(t.verdict, 4, true)}  ${pad(t.target, tw, true)}  ${oneLine(t.measured, 200)}`);
  const count = (v: Verdict): number => report.targets.filter((t) => t.verdict === v).length;
  lines.push(`  → ${count('PASS')} pass, ${count('FAIL')} fail, ${count('N/A')} n/a`);
  return lines.join('\n') + '\n';
}

function oneLine(s: string, max: number): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}
