// Every process the benchmark starts goes through here: each runs in its own process group, so a
// stop reaches its children too (nginx workers), and all of them are stopped on normal exit, on an
// error, on SIGINT/SIGTERM and on the hard timeout.
import { spawn, type ChildProcess } from 'node:child_process';

const OUTPUT_LIMIT = 64 * 1024;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all (ENOENT, EACCES…). */
  error?: string;
}

export interface Tracked {
  readonly name: string;
  readonly proc: ChildProcess;
  /** 0 when the spawn failed. */
  readonly pid: number;
  readonly exited: Promise<Exit>;
  alive(): boolean;
  /** The last 64 KiB of stdout and stderr, interleaved. */
  output(): string;
  stdout(): string;
  stderr(): string;
}

export interface StartOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export class Procs {
  readonly #all = new Set<Tracked>();

  start(name: string, cmd: string, args: readonly string[], opts: StartOptions = {}): Tracked {
    const proc = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: `kill(-pid)` then reaches everything it forks.
      detached: true,
    });
    let out = '';
    let so = '';
    let se = '';
    const keep = (s: string, add: string): string => {
      const t = s + add;
      return t.length > OUTPUT_LIMIT ? t.slice(t.length - OUTPUT_LIMIT) : t;
    };
    proc.stdout?.setEncoding('utf8');
    proc.stderr?.setEncoding('utf8');
    proc.stdout?.on('data', (d: string) => {
      out = keep(out, d);
      so = keep(so, d);
    });
    proc.stderr?.on('data', (d: string) => {
      out = keep(out, d);
      se = keep(se, d);
    });
    let done = false;
    const exited = new Promise<Exit>((resolve) => {
      proc.once('error', (e: Error) => {
        if (done) return;
        done = true;
        resolve({ code: null, signal: null, error: e.message });
      });
      // 'close' (not 'exit') so the output is complete when the promise resolves.
      proc.once('close', (code, signal) => {
        if (done) return;
        done = true;
        resolve({ code, signal });
      });
    });
    const t: Tracked = {
      name,
      proc,
      pid: proc.pid ?? 0,
      exited,
      alive: () => !done && proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined,
      output: () => out,
      stdout: () => so,
      stderr: () => se,
    };
    this.#all.add(t);
    void exited.then(() => this.#all.delete(t));
    return t;
  }

  /**
   * SIGTERM the process itself (a parent, e.g. an nginx master, then stops and reaps its own
   * children), SIGKILL its whole group after `graceMs`; resolves when it is gone (or after a bound).
   */
  async stop(t: Tracked, graceMs = 3000): Promise<Exit> {
    if (!t.alive()) return withTimeout(t.exited, 1000, { code: null, signal: null });
    signalPid(t.pid, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(t.pid, 'SIGKILL'), graceMs);
    const exit = await withTimeout(t.exited, graceMs + 3000, { code: null, signal: 'SIGKILL' as NodeJS.Signals });
    clearTimeout(timer);
    // Stragglers in the group (a worker whose master died first).
    signalGroup(t.pid, 'SIGKILL');
    return exit;
  }

  async stopAll(graceMs = 3000): Promise<void> {
    await Promise.all([...this.#all].map((t) => this.stop(t, graceMs)));
  }

  /** For the hard timeout and signals: ask everything to stop now, without waiting. */
  terminateAllSync(): void {
    for (const t of this.#all) signalPid(t.pid, 'SIGTERM');
  }

  /** For 'exit' handlers and last resorts: no waiting, no second chances. */
  killAllSync(): void {
    for (const t of this.#all) signalGroup(t.pid, 'SIGKILL');
  }

  running(): Tracked[] {
    return [...this.#all].filter((t) => t.alive());
  }
}

function signalPid(pid: number, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    void p.then((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

export interface RunResult extends Exit {
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run a command to completion, killed (group-wide) when it outlives `timeoutMs`. */
export async function run(procs: Procs, name: string, cmd: string, args: readonly string[], timeoutMs: number, opts: StartOptions = {}): Promise<RunResult> {
  const t = procs.start(name, cmd, args, opts);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void procs.stop(t, 1000);
  }, timeoutMs);
  const exit = await t.exited;
  clearTimeout(timer);
  return { ...exit, stdout: t.stdout(), stderr: t.stderr(), timedOut };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
