// The load generator: `taskset -c <cpu> wrk -t1 -c<N> -d<S>s --latency`, and a parser for its
// report. Each run is bounded: wrk stops itself after -d, and is killed if it overstays by 15 s.
import { type Procs } from './procs.js';
import { cpuSeconds } from './sample.js';

export interface WrkResult {
  url: string;
  conns: number;
  /** Completed responses (any status) and the time wrk measured over. */
  requests: number;
  seconds: number;
  /** wrk's own Requests/sec (counts non-2xx responses too). */
  wrkRps: number;
  /** 2xx/3xx responses per second: what the table reports as req/s. */
  okRps: number;
  p50Ms: number | null;
  p75Ms: number | null;
  p90Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
  /** Socket errors + non-2xx/3xx responses (+1 when wrk could not run at all). */
  errors: number;
  /** CPU cores wrk itself used while it ran (≈1 with -t1 means the load generator was the limit). */
  cpuCores: number | null;
  /** Set when wrk could not measure (refused first connection, crashed, killed). */
  failure: string | null;
  raw: string;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function toMs(value: string, unit: string): number {
  return Number(value) * (UNIT_MS[unit] ?? NaN);
}

export function parseWrk(text: string, url: string, conns: number): Omit<WrkResult, 'failure' | 'raw' | 'cpuCores'> {
  const pct = (p: string): number | null => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text);
    return m ? toMs(m[1]!, m[2]!) : null;
  };
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(text);
  const requests = done ? Number(done[1]) : 0;
  const seconds = done ? toMs(done[2]!, done[3]!) / 1000 : 0;
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = {
    connect: se ? Number(se[1]) : 0,
    read: se ? Number(se[2]) : 0,
    write: se ? Number(se[3]) : 0,
    timeout: se ? Number(se[4]) : 0,
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  const wrkRps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
  const max = /^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m|h)/m.exec(text);
  const ok = Math.max(0, requests - non2xx);
  // With no completed request, wrk prints a latency distribution of zeros: not a measurement.
  const lat = (v: number | null): number | null => (ok > 0 ? v : null);
  return {
    url,
    conns,
    requests,
    seconds,
    wrkRps,
    okRps: seconds > 0 ? ok / seconds : 0,
    p50Ms: lat(pct('50')),
    p75Ms: lat(pct('75')),
    p90Ms: lat(pct('90')),
    p99Ms: lat(pct('99')),
    maxMs: lat(max ? toMs(max[1]!, max[2]!) : null),
    socketErrors,
    non2xx,
    errors: socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout + non2xx,
  };
}

export interface WrkOptions {
  wrk: string;
  taskset: string;
  cpu: number;
  url: string;
  conns: number;
  seconds: number;
}

export async function runWrk(procs: Procs, o: WrkOptions): Promise<WrkResult> {
  const args = ['-c', String(o.cpu), o.wrk, '-t1', `-c${o.conns}`, `-d${o.seconds}s`, '--latency', '--timeout', '2s', o.url];
  // taskset execs wrk, so the pid is wrk's; its CPU time is read until it exits.
  const limitMs = (o.seconds + 15) * 1000;
  const t = procs.start(`wrk ${o.url} c=${o.conns}`, o.taskset, args);
  const t0 = performance.now();
  let cpu: { s: number; at: number } | null = null;
  const poll = setInterval(() => {
    const c = cpuSeconds(t.pid);
    if (c !== null) cpu = { s: c, at: performance.now() };
  }, 100);
  let timedOut = false;
  const kill = setTimeout(() => {
    timedOut = true;
    void procs.stop(t, 1000);
  }, limitMs);
  const exit = await t.exited;
  clearInterval(poll);
  clearTimeout(kill);
  const r = { ...exit, stdout: t.stdout(), stderr: t.stderr(), timedOut };
  const seen = cpu as { s: number; at: number } | null;
  const cpuCores = seen && seen.at - t0 > 500 ? seen.s / ((seen.at - t0) / 1000) : null;
  const raw = `${r.stdout}${r.stderr ? `\n[stderr] ${r.stderr}` : ''}`;
  const parsed = parseWrk(r.stdout, o.url, o.conns);
  let failure: string | null = null;
  if (r.timedOut) failure = `wrk did not finish within ${o.seconds + 15} s and was killed`;
  else if (r.error) failure = `wrk could not start: ${r.error}`;
  else if (r.code !== 0) failure = `wrk exited ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`;
  else if (!/requests in/.test(r.stdout)) failure = `unparseable wrk output: ${r.stdout.trim().slice(0, 200)}`;
  return { ...parsed, errors: parsed.errors + (failure ? 1 : 0), cpuCores, failure, raw };
}
