// The real `hostmesh server` process the control-plane benchmark measures: started on loopback with
// its own data dir, stopped with SIGTERM (graceful) and restarted on the same port and data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import WebSocket from 'ws';

// One way to find a free port for both benchmarks.
export { freePort } from '../bench/netutil.js';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export interface ServerProcOptions {
  cli: string;
  dataDir: string;
  port: number;
  logLevel: string;
  /** Where `--cpu-prof` profiles go (one per server run), or null. */
  profDir: string | null;
  /** Where the server's stdout/stderr are appended. */
  logFile: string;
  /** Start with --inspect on a random loopback port, so memory can be read after a forced GC. */
  inspect: boolean;
}

export class ServerProc {
  proc: ChildProcess | null = null;
  private tail = '';
  private inspectorUrl: string | null = null;

  constructor(private readonly opts: ServerProcOptions) {}

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The last few KB the server printed, for error messages. */
  output(): string {
    return this.tail;
  }

  /** Spawn and resolve once the port accepts connections. */
  async start(timeoutMs = 30_000): Promise<void> {
    const args = [
      ...(this.opts.profDir ? ['--cpu-prof', '--cpu-prof-dir', this.opts.profDir] : []),
      ...(this.opts.inspect ? ['--inspect=127.0.0.1:0'] : []),
      this.opts.cli,
      'server',
      '--data-dir',
      this.opts.dataDir,
      '--listen',
      `127.0.0.1:${this.opts.port}`,
    ];
    const log = fs.openSync(this.opts.logFile, 'a');
    const proc = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOSTMESH_LOG_LEVEL: this.opts.logLevel },
    });
    this.proc = proc;
    this.inspectorUrl = null;
    const keep = (d: Buffer): void => {
      fs.writeSync(log, d);
      const text = d.toString();
      this.inspectorUrl ??= /Debugger listening on (ws:\/\/\S+)/.exec(text)?.[1] ?? null;
      this.tail = (this.tail + text).slice(-4000);
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    proc.once('exit', () => fs.closeSync(log));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`the server exited during startup (${proc.exitCode ?? proc.signalCode}):\n${this.tail}`);
      if (fs.existsSync(path.join(this.opts.dataDir, 'admin.token')) && (await canConnect(this.opts.port))) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`the server did not listen on 127.0.0.1:${this.opts.port} within ${timeoutMs} ms:\n${this.tail}`);
  }

  /** SIGTERM (graceful: agents get a close frame), SIGKILL after `graceMs`. Resolves on exit. */
  async stop(graceMs = 15_000): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }

  kill(): void {
    if (this.running) this.proc!.kill('SIGKILL');
  }

  /**
   * Through the inspector: a full GC, then the JS heap in use (bytes), so memory readings are not
   * whatever garbage happened to be pending. Null without --inspect or if it does not answer.
   */
  async collectGarbage(): Promise<{ heapUsed: number } | null> {
    if (!this.inspectorUrl) return null;
    const url = this.inspectorUrl;
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      const t = setTimeout(() => {
        ws.terminate();
        resolve(null);
      }, 30_000);
      const done = (v: { heapUsed: number } | null): void => {
        clearTimeout(t);
        ws.close();
        resolve(v);
      };
      ws.on('open', () => ws.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })));
      ws.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { id?: number; result?: { usedSize?: number } };
        if (m.id === 1) ws.send(JSON.stringify({ id: 2, method: 'Runtime.getHeapUsage' }));
        else if (m.id === 2) done(typeof m.result?.usedSize === 'number' ? { heapUsed: m.result.usedSize } : null);
      });
      ws.on('error', () => done(null));
    });
  }

  /** VmRSS and VmHWM of the server process, in bytes. */
  memory(): { rss: number; hwm: number } {
    const text = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  }

  /** User+system CPU time of the server process so far, in ms (from /proc/<pid>/stat; USER_HZ = 100). */
  cpuMs(): number {
    const stat = fs.readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  }
}
