// The mesh under test, behind the same small interface as the nginx pair (see ProxyUnderTest):
// a real `hostmesh server` and two real agents on loopback "hosts",
//
//   wrk → agent A (127.0.0.2, outbound listeners) ══ mTLS ══► agent B (127.0.0.3:15443) → upstream
//
// the server started from a private copy of dist/, the agents from the single-file bundle operators
// run (what `npm run build:agent` ships and the single executable embeds), built from the same
// sources into that copy (so a rebuild elsewhere in the repo cannot pull files out from under a
// running benchmark, and the agents measured are never a stale dist-agent/). Starting never throws:
// when the mesh cannot be brought up, the handle says why and the benchmark still reports direct and nginx.
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { BUNDLE_NAME, buildAgent } from '../build-agent.js';
import { canConnect, errText, freePort, httpGet, portIsFree, waitListening } from './netutil.js';
import { run, sleep, type Procs, type Tracked } from './procs.js';
import { memoryBreakdown, rssMB, type MemoryBreakdown, type Watched } from './sample.js';

/** What main.ts needs from a system under test (the nginx pair implements it too). */
export interface ProxyUnderTest {
  /** wrk targets, per layer. */
  urls: { tcp: string; http: string };
  /** Processes whose CPU and RSS are sampled during each point (role "A" and "B"). */
  watched(): Watched[];
  /** Null while healthy; otherwise why the next point cannot be trusted (e.g. a process died). */
  problem(): string | null;
}

export interface MeshOptions {
  procs: Procs;
  /** Temp dir for the mesh's data, state dirs, configs, the dist copy and the agent bundle. */
  dir: string;
  upstreamPort: number;
  /** CPU the agents (and the server) are pinned to, the one the upstream and proxies share. */
  cpu: number;
  taskset: string;
  log: (msg: string) => void;
  /** How long to wait for both agents' /readyz (default 60 s). */
  readyTimeoutMs?: number;
  /** Fresh tries (new server, new agents) when the mesh does not come up (default 3). */
  attempts?: number;
  /** True once the benchmark is being stopped: no further attempt. */
  cancelled?: () => boolean;
  /** Loopback addresses of agent A and B (default 127.0.0.2 and 127.0.0.3); a second mesh needs others. */
  ips?: { a: string; b: string };
  /** Added to both agents' host config (e.g. `metrics: { traffic: false }`). */
  agentExtra?: Record<string, unknown>;
  /** Wait for the agents to settle and read their idle RSS (default true; ~17 s). */
  measureIdle?: boolean;
}

export interface MeshHandle extends ProxyUnderTest {
  available: boolean;
  /** Why the mesh is unavailable (null when available). */
  reason: string | null;
  /** Things worth knowing about this mesh run (port fallbacks, failed probes…). */
  notes: string[];
  idleRssMB: { A: number | null; B: number | null };
  /** The idle RSS taken apart (read with it). */
  idleMemory: { A: MemoryBreakdown | null; B: MemoryBreakdown | null };
  /** Every live process of the mesh (server and agents), for the CPU accounting. */
  pids(): number[];
  stop(): Promise<void>;
}

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const DEFAULT_IPS = { a: '127.0.0.2', b: '127.0.0.3' };

interface ApiResult {
  status: number;
  body: any;
}

function apiCall(port: number, ca: string, token: string | null, method: string, urlPath: string, body?: unknown): Promise<ApiResult> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = {};
    if (token) headers['authorization'] = `Bearer ${token}`;
    if (payload !== undefined) headers['content-type'] = 'application/json';
    const req = https.request({ host: '127.0.0.1', port, path: urlPath, method, ca, headers, timeout: 10_000, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          /* keep text */
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer within 10 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** A private, stable copy of the built app: dist/ and package.json, node_modules linked. */
function copyApp(dest: string): string {
  const dist = path.join(REPO_ROOT, 'dist');
  const cli = path.join(dist, 'cli', 'main.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} does not exist: run npm run build`);
  fs.mkdirSync(dest, { recursive: true });
  fs.cpSync(dist, path.join(dest, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(REPO_ROOT, 'package.json'), path.join(dest, 'package.json'));
  fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dest, 'node_modules'), 'dir');
  return path.join(dest, 'dist', 'cli', 'main.js');
}

/**
 * The agent as shipped: `npm run build:agent`'s bundle (its buildAgent, without the executable),
 * into `dest`. Built rather than copied from dist-agent/, which may predate the sources under test.
 */
async function bundleAgent(dest: string): Promise<string> {
  try {
    await buildAgent({ outDir: dest, sea: false });
  } catch (e) {
    throw new Error(`cannot build the agent bundle (npm run build:agent's ${BUNDLE_NAME}): ${errText(e)}`);
  }
  return path.join(dest, BUNDLE_NAME);
}

function tail(s: string, n = 1500): string {
  const t = s.trim();
  return t.length > n ? `…${t.slice(t.length - n)}` : t;
}

function allowedCpusOf(pid: number): string | null {
  try {
    return /Cpus_allowed_list:\s*(\S+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * Bring the mesh up; a failed attempt (e.g. an agent that never gets ready) is stopped and
 * retried from scratch, and every failed attempt's reason stays in the notes.
 */
export async function startMesh(o: MeshOptions): Promise<MeshHandle> {
  const attempts = Math.max(1, o.attempts ?? 3);
  const failures: string[] = [];
  for (let i = 1; ; i++) {
    const h = await startMeshOnce(o, attempts > 1 ? path.join(o.dir, `attempt-${i}`) : o.dir);
    if (h.available || i >= attempts || o.cancelled?.()) {
      h.notes.unshift(...failures);
      return h;
    }
    failures.push(`attempt ${i} of ${attempts} to bring the mesh up failed: ${h.reason ?? '?'}`);
    o.log(`mesh attempt ${i} failed; starting over with a fresh server and agents`);
  }
}

async function startMeshOnce(o: MeshOptions, dir: string): Promise<MeshHandle> {
  o = { ...o, dir };
  const { procs, log } = o;
  const A_IP = o.ips?.a ?? DEFAULT_IPS.a;
  const B_IP = o.ips?.b ?? DEFAULT_IPS.b;
  const extra = o.agentExtra ?? {};
  const notes: string[] = [];
  let server: Tracked | null = null;
  let agentA: Tracked | null = null;
  let agentB: Tracked | null = null;
  const logsDir = path.join(o.dir, 'logs');

  const stop = async (): Promise<void> => {
    // Agents first (they would otherwise spin reconnecting to a stopped server), then the server.
    await Promise.all([agentA, agentB].filter((t): t is Tracked => t !== null).map((t) => procs.stop(t, 5000)));
    if (server) await procs.stop(server, 5000);
    try {
      fs.mkdirSync(logsDir, { recursive: true });
      for (const [n, t] of [['server', server], ['agent-a', agentA], ['agent-b', agentB]] as const) if (t) fs.writeFileSync(path.join(logsDir, `${n}.log`), t.output());
    } catch {
      /* best effort */
    }
  };
  const unavailable = async (reason: string): Promise<MeshHandle> => {
    log(`mesh unavailable: ${reason}`);
    await stop();
    return {
      available: false,
      reason,
      notes,
      idleRssMB: { A: null, B: null },
      idleMemory: { A: null, B: null },
      urls: { tcp: '', http: '' },
      watched: () => [],
      pids: () => [],
      problem: () => reason,
      stop: async () => {},
    };
  };

  try {
    const cli = copyApp(path.join(o.dir, 'app'));
    const agentBundle = await bundleAgent(path.join(o.dir, 'app', 'agent'));
    const dataDir = path.join(o.dir, 'server-data');
    const port = await freePort('127.0.0.1');
    const env = { ...process.env, HOSTMESH_LOG_LEVEL: 'warn', NODE_ENV: 'production' };

    // The server is not on the request path; pinned with the proxies so CPU 0 stays wrk's alone.
    server = procs.start('hostmesh server', o.taskset, ['-c', String(o.cpu), process.execPath, cli, 'server', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], { env });
    const srv = server;
    const deadline = Date.now() + 30_000;
    while (!(fs.existsSync(path.join(dataDir, 'admin.token')) && (await canConnect('127.0.0.1', port, 500)))) {
      if (!srv.alive()) return unavailable(`hostmesh server exited (${JSON.stringify(await srv.exited)}): ${tail(srv.output())}`);
      if (Date.now() > deadline) return unavailable(`hostmesh server not listening on 127.0.0.1:${port} after 30 s: ${tail(srv.output())}`);
      await sleep(100);
    }
    const adminToken = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
    const ca = fs.readFileSync(path.join(dataDir, 'ca', 'root.crt.pem'), 'utf8');
    const api = (method: string, p: string, body?: unknown): Promise<ApiResult> => apiCall(port, ca, adminToken, method, p, body);

    const root = await api('GET', '/v1/ca/root');
    const fingerprint = root.body?.fingerprint as string | undefined;
    if (root.status !== 200 || !fingerprint) return unavailable(`GET /v1/ca/root answered ${root.status}: ${JSON.stringify(root.body)}`);

    const documents = [
      { kind: 'Mesh', name: 'default', spec: { defaultAccess: 'allow' } },
      { kind: 'Service', name: 'bench-http', spec: { protocol: 'http', port: o.upstreamPort } },
      { kind: 'Service', name: 'bench-tcp', spec: { protocol: 'tcp', port: o.upstreamPort } },
    ];
    const applied = await api('POST', '/v1/apply', { documents });
    if (applied.status < 200 || applied.status >= 300) return unavailable(`POST /v1/apply answered ${applied.status}: ${JSON.stringify(applied.body)}`);

    const tok = await api('POST', '/v1/tokens', { ttl: '1h', description: 'hostmesh bench' });
    const joinToken = tok.body?.token as string | undefined;
    if (tok.status !== 201 || !joinToken) return unavailable(`POST /v1/tokens answered ${tok.status}: ${JSON.stringify(tok.body)}`);

    // Fixed, well-known ports per the method; moved (and said so) when something else holds them.
    const pick = async (ip: string, want: number, what: string): Promise<number> => {
      if (await portIsFree(ip, want)) return want;
      const p = await freePort(ip);
      notes.push(`${ip}:${want} (${what}) was taken; used ${ip}:${p}`);
      return p;
    };
    const bInbound = await pick(B_IP, 15443, 'agent B inbound');
    const bAdmin = await pick(B_IP, 15090, 'agent B admin');
    const aInbound = await pick(A_IP, 15443, 'agent A inbound');
    const aAdmin = await pick(A_IP, 15090, 'agent A admin');
    const httpPort = await freePort(A_IP);
    let tcpPort = await freePort(A_IP);
    while (tcpPort === httpPort) tcpPort = await freePort(A_IP);

    const common = { server: `https://127.0.0.1:${port}`, caFingerprint: fingerprint, token: joinToken, logLevel: 'warn' };
    const cfgB = {
      ...common,
      ...extra,
      name: 'bench-b',
      address: B_IP,
      stateDir: path.join(o.dir, 'state-b'),
      inbound: `${B_IP}:${bInbound}`,
      admin: `${B_IP}:${bAdmin}`,
      services: [
        { name: 'bench-http', port: o.upstreamPort, protocol: 'http' },
        { name: 'bench-tcp', port: o.upstreamPort, protocol: 'tcp' },
      ],
    };
    const cfgA = {
      ...common,
      ...extra,
      name: 'bench-a',
      address: A_IP,
      stateDir: path.join(o.dir, 'state-a'),
      inbound: `${A_IP}:${aInbound}`,
      admin: `${A_IP}:${aAdmin}`,
      upstreams: [
        { service: 'bench-http', localPort: httpPort, bind: A_IP },
        { service: 'bench-tcp', localPort: tcpPort, bind: A_IP },
      ],
    };
    const fileA = path.join(o.dir, 'agent-a.yaml');
    const fileB = path.join(o.dir, 'agent-b.yaml');
    fs.writeFileSync(fileA, stringify(cfgA), { mode: 0o600 });
    fs.writeFileSync(fileB, stringify(cfgB), { mode: 0o600 });

    // Profiling aid: HOSTMESH_BENCH_AGENT_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (Node refuses --cpu-prof in NODE_OPTIONS).
    const nodeArgs = (process.env['HOSTMESH_BENCH_AGENT_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
    // The agents get the environment the systemd unit gives them (its Environment= lines), but the log level.
    const agentEnv = { ...env, ...unitEnvironment(), HOSTMESH_LOG_LEVEL: 'warn' };
    agentB = procs.start('agent B', process.execPath, [...nodeArgs, agentBundle, 'agent', '--config', fileB], { env: agentEnv });
    agentA = procs.start('agent A', process.execPath, [...nodeArgs, agentBundle, 'agent', '--config', fileA], { env: agentEnv });

    const readyTimeout = o.readyTimeoutMs ?? 60_000;
    const waitReady = async (t: Tracked, ip: string, adminPort: number): Promise<string | null> => {
      const until = Date.now() + readyTimeout;
      let last = 'no answer yet';
      let refusedAt = 0;
      while (Date.now() < until) {
        if (!t.alive()) return `${t.name} exited (${JSON.stringify(await t.exited)}): ${tail(t.output())}`;
        // The server refusing the agent (401/403 in its log) does not fix itself by waiting: give
        // it 10 s, then give up on this attempt rather than sit out the whole timeout.
        if (!refusedAt && /"status":40[13]\b/.test(t.output())) refusedAt = Date.now();
        if (refusedAt && Date.now() - refusedAt > 10_000) {
          return `${t.name} refused by the server and not ready 10 s later (last /readyz: ${last}); output: ${tail(t.output())}`;
        }
        try {
          const r = await httpGet(`http://${ip}:${adminPort}/readyz`, 2000);
          if (r.status === 200) return null;
          last = `${r.status} ${r.body.trim()}`;
        } catch (e) {
          last = errText(e);
        }
        await sleep(200);
      }
      return `${t.name} not ready after ${readyTimeout / 1000} s (last /readyz: ${last}); output: ${tail(t.output())}`;
    };
    const [whyB, whyA] = await Promise.all([waitReady(agentB, B_IP, bAdmin), waitReady(agentA, A_IP, aAdmin)]);
    if (whyA || whyB) return unavailable([whyA, whyB].filter(Boolean).join(' | '));

    // Pin every thread of both agents (taskset -a: libuv and V8 threads too) to the proxies' CPU.
    for (const t of [agentA, agentB]) {
      const r = await run(procs, `taskset ${t.name}`, o.taskset, ['-a', '-cp', String(o.cpu), String(t.pid)], 10_000);
      if (r.code !== 0) notes.push(`could not pin ${t.name}: ${(r.stderr || r.stdout).trim()}`);
      const allowed = allowedCpusOf(t.pid);
      if (allowed !== String(o.cpu)) notes.push(`${t.name} runs on CPUs ${allowed ?? '?'} (wanted ${o.cpu})`);
    }

    // Idle footprint, before any traffic, once the start-up garbage is collected (2 s after ready it
    // still counts ~12 MB of it, which an idle agent gives back within seconds).
    let idleRssMB: { A: number | null; B: number | null } = { A: null, B: null };
    let idleMemory: MeshHandle['idleMemory'] = { A: null, B: null };
    if (o.measureIdle ?? true) {
      await sleep(2000);
      const earlyRss = { A: rssMB(agentA.pid), B: rssMB(agentB.pid) };
      await sleep(IDLE_SETTLE_MS);
      idleRssMB = { A: rssMB(agentA.pid), B: rssMB(agentB.pid) };
      idleMemory = { A: memoryBreakdown(agentA.pid), B: memoryBreakdown(agentB.pid) };
      log(`agent RSS 2 s after ready: A ${earlyRss.A?.toFixed(1)} MB, B ${earlyRss.B?.toFixed(1)} MB; ${IDLE_SETTLE_MS / 1000} s later (reported as idle): A ${idleRssMB.A?.toFixed(1)}, B ${idleRssMB.B?.toFixed(1)}`);
    }

    const urls = { http: `http://${A_IP}:${httpPort}/`, tcp: `http://${A_IP}:${tcpPort}/` };
    // B's instances reach A's slice through the server; give that a moment, then say how it went.
    for (const layer of ['http', 'tcp'] as const) {
      const port = layer === 'http' ? httpPort : tcpPort;
      if (!(await waitListening(A_IP, port, 10_000, () => agentA?.alive() ?? false))) {
        notes.push(`agent A is not listening on ${A_IP}:${port} (${layer} upstream) 10 s after ready`);
        continue;
      }
      const until = Date.now() + 10_000;
      let last = '';
      for (;;) {
        try {
          const r = await httpGet(urls[layer], 2000);
          if (r.status === 200) {
            last = '';
            break;
          }
          last = `HTTP ${r.status} ${r.body.trim().slice(0, 200)}`;
        } catch (e) {
          last = errText(e);
        }
        if (Date.now() > until) break;
        await sleep(250);
      }
      if (last) notes.push(`probe of ${layer} through the mesh (${urls[layer]}) never got 200 in 10 s: ${last}`);
    }
    log(`mesh up: server 127.0.0.1:${port}, agent A ${A_IP} (http ${httpPort}, tcp ${tcpPort}), agent B ${B_IP}:${bInbound}${idleRssMB.A === null ? '' : `; idle RSS A ${idleRssMB.A.toFixed(1)} MB, B ${idleRssMB.B?.toFixed(1)} MB`}`);
    for (const n of notes) log(`mesh note: ${n}`);

    const a = agentA;
    const b = agentB;
    return {
      available: true,
      reason: null,
      notes,
      idleRssMB,
      idleMemory,
      urls,
      pids: () => [a, b, srv].filter((t) => t.alive()).map((t) => t.pid),
      watched: () => [
        { role: 'A', what: `agent A (${A_IP}, outbound)`, pid: a.pid },
        { role: 'B', what: `agent B (${B_IP}, inbound)`, pid: b.pid },
      ],
      problem: () => {
        const dead = [a, b, srv].filter((t) => !t.alive()).map((t) => `${t.name} exited: ${tail(t.output(), 500)}`);
        return dead.length ? dead.join(' | ') : null;
      },
      stop,
    };
  } catch (e) {
    return unavailable(errText(e));
  }
}

/** How long the idle agents are left alone before their idle RSS is read. */
const IDLE_SETTLE_MS = 15_000;

/** The Environment= lines of systemd/hostmesh-agent.service, as variables. */
function unitEnvironment(): Record<string, string> {
  const unit = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../../systemd/hostmesh-agent.service');
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(unit, 'utf8').split('\n')) {
    const m = /^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}
