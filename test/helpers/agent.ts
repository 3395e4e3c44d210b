// Starts real `hostmesh agent` processes, each on its own loopback address (127.0.0.x), with its
// own state dir and admin port, against a TestServer.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { stringify } from 'yaml';
import { CLI, tempDir, type TestServer } from './server.js';

export interface AgentSpec {
  name: string;
  /** Loopback address of this "host", e.g. 127.0.0.2. */
  ip: string;
  token?: string;
  services?: Array<Record<string, unknown>>;
  upstreams?: Array<{ service: string; localPort: number; bind?: string }>;
  inboundPort?: number;
  adminPort?: number;
  caFingerprint?: string;
  extra?: Record<string, unknown>;
  /** The `hostmesh` entry script to run (default: this build's), e.g. an older agent's. */
  cli?: string;
}

export interface TestAgent {
  spec: AgentSpec;
  stateDir: string;
  configFile: string;
  adminUrl: string;
  proc: ChildProcess;
  output(): string;
  exited(): Promise<number | null>;
  admin<T = any>(p: string): Promise<{ status: number; body: T }>;
  configDump(): Promise<any>;
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
  start(): void;
  cleanup(): Promise<void>;
}

export async function createJoinToken(server: TestServer, body: Record<string, unknown> = {}): Promise<string> {
  const r = await server.api('POST', '/v1/tokens', { ttl: '1h', ...body });
  if (r.status !== 201) throw new Error(`token create failed: ${JSON.stringify(r.body)}`);
  return r.body.token as string;
}

export function writeAgentConfig(server: TestServer, spec: AgentSpec, stateDir: string, fingerprint: string): string {
  const cfg: Record<string, unknown> = {
    server: server.url,
    caFingerprint: spec.caFingerprint ?? fingerprint,
    name: spec.name,
    address: spec.ip,
    stateDir,
    inbound: `${spec.ip}:${spec.inboundPort ?? 15443}`,
    admin: `${spec.ip}:${spec.adminPort ?? 15090}`,
    logLevel: 'debug',
    // Tests stop agents often; a short graceful stop keeps them quick (and under stop()'s 5 s SIGKILL).
    drainTimeout: '2s',
    ...(spec.token ? { token: spec.token } : {}),
    ...(spec.services ? { services: spec.services } : {}),
    ...(spec.upstreams ? { upstreams: spec.upstreams } : {}),
    ...(spec.extra ?? {}),
  };
  const file = path.join(stateDir, '..', `${spec.name}.yaml`);
  fs.writeFileSync(file, stringify(cfg));
  return file;
}

function getJson(url: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 3000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* text */
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export async function startTestAgent(server: TestServer, spec: AgentSpec): Promise<TestAgent> {
  const root = tempDir(`hostmesh-agent-${spec.name}-`);
  const stateDir = path.join(root, 'state');
  const fingerprint = (await server.api('GET', '/v1/ca/root', undefined, { token: null })).body.fingerprint as string;
  const configFile = writeAgentConfig(server, spec, stateDir, fingerprint);
  const adminUrl = `http://${spec.ip}:${spec.adminPort ?? 15090}`;
  let proc!: ChildProcess;
  let out = '';
  let exit: Promise<number | null> = Promise.resolve(null);

  const agent: TestAgent = {
    spec,
    stateDir,
    configFile,
    adminUrl,
    get proc() {
      return proc;
    },
    output: () => out,
    exited: () => exit,
    admin: (p) => getJson(`${adminUrl}${p}`),
    configDump: async () => (await getJson(`${adminUrl}/config_dump`)).body,
    start() {
      proc = spawn(process.execPath, [spec.cli ?? CLI, 'agent', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
      proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      exit = new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
    },
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      const code = await exit;
      clearTimeout(t);
      return code;
    },
    async kill9() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exit;
    },
    async cleanup() {
      await agent.kill9();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  agent.start();
  return agent;
}

/** Poll `check` until it returns a truthy value or `timeoutMs` passes; returns the value. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function waitReady(agent: TestAgent, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    `${agent.spec.name} ready`,
    async () => {
      if (agent.proc.exitCode !== null) throw new Error(`agent exited ${agent.proc.exitCode}: ${agent.output().slice(-2000)}`);
      return (await agent.admin('/readyz')).status === 200;
    },
    timeoutMs,
  );
}

/** A tiny local service: answers every request with its name (and the path), or 503 when told to be sick. */
export async function startEchoService(ip: string, port: number, name: string): Promise<{ server: http.Server; close(): Promise<void>; setSick(v: boolean): void }> {
  let sick = false;
  const server = http.createServer((req, res) => {
    if (sick) {
      res.writeHead(503).end('sick');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`${name} ${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return {
    server,
    setSick: (v) => (sick = v),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
