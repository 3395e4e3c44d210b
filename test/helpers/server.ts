// Starts a real `hostmesh server` process on loopback with its own temp data dir, and gives tests
// an HTTPS client that trusts only that server's mesh root.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';

export const REPO_ROOT = path.resolve(new URL('.', import.meta.url).pathname, '../../..');
export const CLI = path.join(REPO_ROOT, 'dist/cli/main.js');

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function tempDir(prefix = 'hostmesh-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface ApiResponse<T = any> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

export interface TestServer {
  url: string;
  port: number;
  dataDir: string;
  token: string;
  caPem: string;
  proc: ChildProcess;
  output(): string;
  api<T = any>(method: string, urlPath: string, body?: unknown, opts?: { token?: string | null; headers?: Record<string, string>; raw?: string | Buffer }): Promise<ApiResponse<T>>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL: no chance to flush or close. */
  kill9(): Promise<void>;
  /** Start again on the same port and data dir. */
  restart(): Promise<void>;
  /** Stop and remove the data dir. */
  cleanup(): Promise<void>;
}

export async function startTestServer(opts: { dataDir?: string; trustDomain?: string } = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? tempDir();
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  let proc!: ChildProcess;
  let out = '';
  let dispatcher: Agent | null = null;

  const launch = async (): Promise<void> => {
    const args = [CLI, 'server', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`];
    if (opts.trustDomain) args.push('--trust-domain', opts.trustDomain);
    proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOSTMESH_LOG_LEVEL: 'warn' } });
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}: ${out}`);
      if (fs.existsSync(path.join(dataDir, 'server.json'))) {
        const ok = await new Promise<boolean>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
          s.on('error', () => resolve(false));
        });
        if (ok) break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const caPem = fs.readFileSync(path.join(dataDir, 'ca', 'root.crt.pem'), 'utf8');
    await dispatcher?.close();
    dispatcher = new Agent({ connect: { ca: caPem }, keepAliveTimeout: 1000 });
    server.caPem = caPem;
  };

  const waitExit = (): Promise<number | null> =>
    proc.exitCode !== null || proc.signalCode !== null ? Promise.resolve(proc.exitCode) : new Promise((r) => proc.once('exit', (code) => r(code)));

  const server: TestServer = {
    url,
    port,
    dataDir,
    token: '',
    caPem: '',
    get proc() {
      return proc;
    },
    output: () => out,
    async api(method, urlPath, body, o = {}) {
      const token = o.token === undefined ? server.token : o.token;
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (token) headers['authorization'] = `Bearer ${token}`;
      let payload: string | Buffer | undefined = o.raw;
      if (payload === undefined && body !== undefined) {
        payload = JSON.stringify(body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await request(`${url}${urlPath}`, { method: method as 'GET', headers, body: payload, dispatcher: dispatcher! });
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* not JSON: leave as text */
      }
      return { status: res.statusCode, headers: res.headers, body: parsed as any };
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      const exited = waitExit();
      proc.kill('SIGTERM');
      return exited;
    },
    async kill9() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = waitExit();
      proc.kill('SIGKILL');
      await exited;
    },
    async restart() {
      await server.stop();
      await launch();
    },
    async cleanup() {
      await server.kill9();
      await dispatcher?.close();
      if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  await launch();
  server.token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  return server;
}

/** Run the CLI as a user would, with env that points nowhere unless given. */
export async function runCli(args: string[], opts: { env?: Record<string, string>; input?: string; cwd?: string } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? os.tmpdir(),
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/root', ...(opts.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stdin.end(opts.input ?? '');
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
