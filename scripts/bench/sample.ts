// CPU and memory of the processes under test, from /proc: utime+stime (whole process, all threads)
// and VmRSS. CPU is a delta over the measured window; RSS is sampled every 200 ms (peak kept).
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

let tck: number | null = null;

export function clockTicks(): number {
  if (tck !== null) return tck;
  try {
    tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim()) || 100;
  } catch {
    tck = 100;
  }
  return tck;
}

/** user+system CPU seconds used so far by `pid` (all its threads), or null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is index 0, utime 11, stime 12 (fields 14 and 15 in proc(5)).
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / clockTicks();
  } catch {
    return null;
  }
}

/** The `field: N kB` lines of a /proc file, in MB; null for a field it does not have or a file gone. */
function procMB(file: string, fields: readonly string[]): (number | null)[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return fields.map(() => null);
  }
  return fields.map((f) => {
    const m = new RegExp(`^${f}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return m ? Number(m[1]) / 1024 : null;
  });
}

export function rssMB(pid: number): number | null {
  return procMB(`/proc/${pid}/status`, ['VmRSS'])[0] ?? null;
}

/**
 * What an RSS figure is made of: anonymous memory (the process's own heap, V8's and malloc's) and
 * file-backed pages (the node binary and libraries, shared with every process that maps them), and
 * PSS (RSS with shared pages divided among the processes that share them).
 */
export interface MemoryBreakdown {
  anonMB: number;
  fileMB: number;
  pssMB: number | null;
}

export function memoryBreakdown(pid: number): MemoryBreakdown | null {
  const [anonMB, fileMB] = procMB(`/proc/${pid}/status`, ['RssAnon', 'RssFile']);
  if (anonMB == null || fileMB == null) return null;
  // No smaps_rollup (an old kernel): PSS unknown.
  const [pssMB = null] = procMB(`/proc/${pid}/smaps_rollup`, ['Pss']);
  return { anonMB, fileMB, pssMB };
}

/** Direct children of `pid` (nginx workers of a master). */
export function childrenOf(pid: number): number[] {
  try {
    const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    if (text) return text.split(/\s+/).map(Number);
  } catch {
    /* fall back to a scan */
  }
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      /* raced with an exit */
    }
  }
  return out;
}

export interface Watched {
  /** Column label, e.g. "A" or "B". */
  role: string;
  /** Who it is, e.g. "agent A (127.0.0.2)" or "nginx A worker". */
  what: string;
  pid: number;
}

export interface ProcFigures {
  role: string;
  what: string;
  pid: number;
  /** CPU cores busy on average over the window (cpu-seconds per second). */
  cpuCores: number | null;
  rssPeakMB: number | null;
  rssEndMB: number | null;
}

interface CpuTicks {
  /** user + nice + system: time spent running processes (comparable with their utime+stime). */
  proc: number;
  steal: number;
  total: number;
}

/** Per-CPU counters from /proc/stat, in clock ticks. */
export function cpuStat(): Map<number, CpuTicks> {
  const out = new Map<number, CpuTicks>();
  try {
    for (const line of fs.readFileSync('/proc/stat', 'utf8').split('\n')) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = m[2]!.trim().split(/\s+/).map(Number);
      out.set(Number(m[1]), { proc: user + nice + system, steal, total: user + nice + system + idle + iowait + irq + softirq + steal });
    }
  } catch {
    /* not Linux */
  }
  return out;
}

/**
 * How busy the benchmark's CPUs were over a window, and how much of the proxies' CPU went to
 * processes that are not ours (other work on the machine): the noise indicator of a point.
 */
export interface CpuUse {
  cpu: number;
  /** Share of the window the CPU ran processes (user+nice+system), 0..1. */
  busy: number | null;
  /** Share stolen by the hypervisor, 0..1. */
  steal: number | null;
}

export interface WindowFigures {
  procs: ProcFigures[];
  cpus: CpuUse[];
  /** CPU cores used by the processes in `ours` (everything we pinned to the proxies' CPU). */
  oursCores: number | null;
  /** The busiest processes over the window that are neither ours nor this harness (who made the noise). */
  busiestOthers: Array<{ pid: number; comm: string; cores: number }>;
}

/** utime+stime (seconds) of every process, by pid, with its command name. */
function allProcesses(): Map<number, { comm: string; s: number }> {
  const out = new Map<number, { comm: string; s: number }>();
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  const hz = clockTicks();
  for (const d of dirs) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(d), { comm, s: (Number(rest[11]) + Number(rest[12])) / hz });
    } catch {
      /* raced with an exit */
    }
  }
  return out;
}

export class Sampler {
  readonly #watched: readonly Watched[];
  readonly #ours: readonly number[];
  readonly #cpus: readonly number[];
  #start = new Map<number, number | null>();
  #oursStart = new Map<number, number | null>();
  #cpuStart = new Map<number, CpuTicks>();
  #allStart = new Map<number, { comm: string; s: number }>();
  #peak = new Map<number, number>();
  #t0 = 0;
  #timer: NodeJS.Timeout | null = null;

  /** `watched`: sampled for the table; `ours`: pids whose CPU counts as the benchmark's own; `cpus`: CPUs to watch. */
  constructor(watched: readonly Watched[], ours: readonly number[] = [], cpus: readonly number[] = []) {
    this.#watched = watched;
    this.#ours = [...new Set(ours)];
    this.#cpus = cpus;
  }

  start(): void {
    this.#t0 = performance.now();
    for (const w of this.#watched) {
      this.#start.set(w.pid, cpuSeconds(w.pid));
      this.#peak.set(w.pid, rssMB(w.pid) ?? 0);
    }
    for (const pid of this.#ours) this.#oursStart.set(pid, cpuSeconds(pid));
    this.#cpuStart = cpuStat();
    this.#allStart = allProcesses();
    this.#timer = setInterval(() => this.#sampleRss(), 200);
    this.#timer.unref();
  }

  #sampleRss(): void {
    for (const w of this.#watched) {
      const r = rssMB(w.pid);
      if (r !== null && r > (this.#peak.get(w.pid) ?? 0)) this.#peak.set(w.pid, r);
    }
  }

  stop(): WindowFigures {
    if (this.#timer) clearInterval(this.#timer);
    this.#sampleRss();
    const wall = (performance.now() - this.#t0) / 1000;
    const cpuEnd = cpuStat();
    const cpus = this.#cpus.map((cpu): CpuUse => {
      const a = this.#cpuStart.get(cpu);
      const b = cpuEnd.get(cpu);
      const total = a && b ? b.total - a.total : 0;
      return { cpu, busy: a && b && total > 0 ? (b.proc - a.proc) / total : null, steal: a && b && total > 0 ? (b.steal - a.steal) / total : null };
    });
    let ours: number | null = wall > 0 ? 0 : null;
    for (const pid of this.#ours) {
      const a = this.#oursStart.get(pid);
      const b = cpuSeconds(pid);
      if (ours !== null && a != null && b !== null) ours += (b - a) / wall;
    }
    const skip = new Set([...this.#ours, ...this.#watched.map((w) => w.pid), process.pid]);
    const busiestOthers: WindowFigures['busiestOthers'] = [];
    if (wall > 0) {
      for (const [pid, now] of allProcesses()) {
        const was = this.#allStart.get(pid);
        if (skip.has(pid) || now.comm === 'wrk') continue;
        // A process born during the window counts from zero.
        const cores = (now.s - (was && was.comm === now.comm ? was.s : 0)) / wall;
        if (cores >= 0.02) busiestOthers.push({ pid, comm: now.comm, cores: Math.round(cores * 100) / 100 });
      }
      busiestOthers.sort((a, b) => b.cores - a.cores);
      busiestOthers.splice(5);
    }
    return { procs: this.#procFigures(wall), cpus, oursCores: this.#ours.length ? ours : null, busiestOthers };
  }

  #procFigures(wall: number): ProcFigures[] {
    return this.#watched.map((w) => {
      const a = this.#start.get(w.pid) ?? null;
      const b = cpuSeconds(w.pid);
      const end = rssMB(w.pid);
      return {
        role: w.role,
        what: w.what,
        pid: w.pid,
        cpuCores: a !== null && b !== null && wall > 0 ? (b - a) / wall : null,
        rssPeakMB: end === null && !this.#peak.get(w.pid) ? null : (this.#peak.get(w.pid) ?? null),
        rssEndMB: end,
      };
    });
  }
}
