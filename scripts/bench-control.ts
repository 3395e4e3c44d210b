// `npm run bench:control [-- --agents N --writes K --json]`: the control-plane benchmark of issue 3.
//
// It starts a real `hostmesh server` process, joins N simulated agents through the real /v1/join
// (each with its own P-256 key and host certificate), spread over two client processes, and holds
// one mutual-TLS WebSocket per agent. Each simulated agent says hello, checks every snapshot
// (schema, hashOf(slice) === hash) and acks it. Measured:
//   - write → all acked: an admin write that changes every agent's slice (PUT Mesh/default with
//     alternating defaultAccess), from just before the HTTP request to the last agent's ack of that
//     revision; p50/p99 over K writes;
//   - server memory per connected agent: server RSS after all connected minus before any joined, / N;
//   - reconnect after a restart: SIGTERM the server, start it again on the same port and data dir,
//     time until all N are back, and the largest share of them arriving in any one second.
// Progress goes to stderr; the report (or with --json the figures) to stdout. Exit code 0 when it
// ran to the end (whatever the PASS/FAIL verdicts), 1 on failure to run, 2 on the time limit.
//
// File descriptors: the server holds one socket per agent and each client process one per agent it
// runs. The soft `ulimit -n` must exceed N + a few hundred (checked at start); for 5000 agents run
// e.g. `bash -c 'ulimit -n 65536; npm run bench:control -- --agents 5000'` (the soft limit can be
// raised up to the hard one, `ulimit -Hn`; 20000 is plenty for 5000 agents). EMFILE in any process
// is reported as such. Node has no getrlimit, so the limit is read from /proc/self/limits.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { now, svcName, type ClientStats, type ClientToParent, type ParentToClient } from './bench-control/common.js';
import { freePort, ServerProc } from './bench-control/server-proc.js';

// ---- options ------------------------------------------------------------------------------------

interface Options {
  agents: number;
  writes: number;
  json: boolean;
  services: number;
  clients: number;
  joinConcurrency: number;
  connectConcurrency: number;
  fullCheck: boolean;
  timeoutMin: number;
  reconnectWaitS: number;
  connectWaitS: number;
  serverLogLevel: string;
  serverProf: string | null;
  clientProf: string | null;
  gc: boolean;
  keep: boolean;
}

const USAGE = `usage: npm run bench:control -- [options]     (npm run -s … for clean --json output)
  --agents N               simulated agents (default 1000)
  --writes K               admin writes timed to the last ack (default 20)
  --json                   print the figures as JSON on stdout
  --services S             declared services; agent i registers svc-(i % S) (default 10)
  --clients C              client processes the agents are spread over (default 2)
  --join-concurrency J     joins in flight in total (default 50)
  --connect-concurrency X  first handshakes in flight per client process (default 100)
  --full-check             parse, schema-check and hash every snapshot even when its bytes equal
                           one this client process already verified (more client CPU)
  --timeout-min M          abort after M minutes (default 10)
  --reconnect-wait-s W     how long after the restart agents may take to come back (default 60)
  --connect-wait-s W       how long the first connection of all agents may take (default 300)
  --server-log-level L     the server's HOSTMESH_LOG_LEVEL (default warn)
  --server-prof DIR        run the server with --cpu-prof, profiles into DIR
  --client-prof DIR        run the client processes with --cpu-prof, profiles into DIR
  --no-gc                  read the server's RSS as is; by default the server runs with
                           --inspect on loopback and each reading follows a forced full GC
  --keep                   keep the temp dir (server data and log)`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    agents: 1000,
    writes: 20,
    json: false,
    services: 10,
    clients: 2,
    joinConcurrency: 50,
    connectConcurrency: 100,
    fullCheck: false,
    timeoutMin: 10,
    reconnectWaitS: 60,
    connectWaitS: 300,
    serverLogLevel: 'warn',
    serverProf: null,
    clientProf: null,
    gc: true,
    keep: false,
  };
  const int = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} needs an integer ≥ ${min}, got ${v ?? 'nothing'}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string | undefined => argv[++i];
    switch (a) {
      case '--agents': o.agents = int(a, next(), 1); break;
      case '--writes': o.writes = int(a, next(), 1); break;
      case '--json': o.json = true; break;
      case '--services': o.services = int(a, next(), 1); break;
      case '--clients': o.clients = int(a, next(), 1); break;
      case '--join-concurrency': o.joinConcurrency = int(a, next(), 1); break;
      case '--connect-concurrency': o.connectConcurrency = int(a, next(), 1); break;
      case '--full-check': o.fullCheck = true; break;
      case '--timeout-min': o.timeoutMin = int(a, next(), 1); break;
      case '--reconnect-wait-s': o.reconnectWaitS = int(a, next(), 1); break;
      case '--connect-wait-s': o.connectWaitS = int(a, next(), 1); break;
      case '--server-log-level': o.serverLogLevel = next() ?? 'warn'; break;
      case '--server-prof': o.serverProf = path.resolve(next() ?? 'bench-prof'); break;
      case '--client-prof': o.clientProf = path.resolve(next() ?? 'bench-prof'); break;
      case '--no-gc': o.gc = false; break;
      case '--keep': o.keep = true; break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE + '\n');
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  o.clients = Math.min(o.clients, o.agents);
  return o;
}

// ---- small helpers --------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let quiet = false;
const t00 = now();
function progress(msg: string): void {
  if (!quiet) process.stderr.write(`[bench ${((now() - t00) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}
// A reader that went away (`| head`) must not take the bench down before it stops what it started.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);

/** Nearest-rank percentile (p in 0..100); with K = 20 writes p99 is the slowest write. */
function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** The soft and hard open-files limits (RLIMIT_NOFILE), or null where /proc does not say. */
function fdLimits(): { soft: number; hard: number } | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    const n = (v: string): number => (v === 'unlimited' ? Infinity : Number(v));
    return m ? { soft: n(m[1]!), hard: n(m[2]!) } : null;
  } catch {
    return null;
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, stepMs = 10): Promise<boolean> {
  const deadline = now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (now() > deadline) return false;
    await sleep(stepMs);
  }
}

// ---- state shared by the phases ---------------------------------------------------------------------

const here = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(here, '..', 'cli', 'main.js');
const CLIENT = path.join(here, 'bench-control', 'client.js');

let tmp: string | null = null;
let server: ServerProc | null = null;
const children: ChildProcess[] = [];
let phase = 'setup';
let fatal: string | null = null;
let opts: Options;

/** Per agent: highest revision acked, and every (revision, time) ack while a write is being timed. */
const maxAcked = new Map<number, number>();
let ackSink: ((idx: number, rev: number, at: number) => void) | null = null;
/** Per agent: times its connection opened (hello sent). */
const arrivals = new Map<number, number[]>();
let lastAckAt = 0;
const joinedIdx: number[] = [];
/** Joined agents that connected and got their first snapshot: the population the later phases measure. */
let active: number[] = [];
/** Agents whose upgrade the server refused (HTTP 401/403): they will not come by retrying. */
const refused = new Set<number>();
const statsByWorker = new Map<number, ClientStats>();
let statsWaiters: Array<() => void> = [];

function onChildMessage(m: ClientToParent): void {
  switch (m.type) {
    case 'acks':
      for (const [idx, rev, at] of m.items) {
        if (at > lastAckAt) lastAckAt = at;
        if (rev > (maxAcked.get(idx) ?? -1)) maxAcked.set(idx, rev);
        ackSink?.(idx, rev, at);
      }
      return;
    case 'refused':
      for (const idx of m.items) refused.add(idx);
      return;
    case 'arrivals':
      for (const [idx, at] of m.items) {
        const list = arrivals.get(idx);
        if (list) list.push(at);
        else arrivals.set(idx, [at]);
      }
      return;
    case 'stats':
      statsByWorker.set(m.stats.worker, m.stats);
      return void statsWaiters.forEach((w) => w());
    case 'fatal':
      fatal ??= m.message;
      progress(`client ${m.worker}: ${m.message}`);
      return;
    default:
      return;
  }
}

async function collectStats(): Promise<ClientStats[]> {
  statsByWorker.clear();
  const done = new Promise<void>((resolve) => {
    statsWaiters.push(() => {
      if (statsByWorker.size === children.length) resolve();
    });
  });
  for (const c of children) if (c.connected) c.send({ type: 'stats' } satisfies ParentToClient);
  await Promise.race([done, sleep(5_000)]);
  statsWaiters = [];
  return [...statsByWorker.values()];
}

function sumStats(list: ClientStats[]): ClientStats {
  const total: ClientStats = {
    worker: -1, joined: 0, failedJoins: 0, joinErrors: [], snapshots: 0, snapshotBytes: 0, fullyVerified: 0, hashMismatches: 0,
    invalidMessages: 0, serverErrors: 0, refusedUpgrades: 0, errorSamples: [], connectFailures: {}, closes: 0, closeReasons: {}, emfile: false, cpuMs: 0,
    shutdownRefusals: 0, deltas: 0, deltaBaseMismatches: 0,
  };
  for (const s of list) {
    for (const k of ['joined', 'failedJoins', 'snapshots', 'snapshotBytes', 'fullyVerified', 'hashMismatches', 'invalidMessages', 'serverErrors', 'refusedUpgrades', 'closes', 'cpuMs', 'shutdownRefusals', 'deltas', 'deltaBaseMismatches'] as const) {
      total[k] += s[k];
    }
    total.joinErrors.push(...s.joinErrors);
    total.errorSamples.push(...s.errorSamples);
    for (const [k, v] of Object.entries(s.connectFailures)) total.connectFailures[k] = (total.connectFailures[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.closeReasons)) total.closeReasons[k] = (total.closeReasons[k] ?? 0) + v;
    total.emfile ||= s.emfile;
  }
  return total;
}

// ---- the admin API ------------------------------------------------------------------------------------

let dispatcher: Agent | null = null;
let adminToken = '';
let port = 0;

async function api<T = any>(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: T }> {
  const res = await request(`https://127.0.0.1:${port}${urlPath}`, {
    method: method as 'GET',
    headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    dispatcher: dispatcher!,
    headersTimeout: 60_000,
    bodyTimeout: 60_000,
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  return { status: res.statusCode, body: parsed as T };
}

async function apiOk<T = any>(method: string, urlPath: string, body?: unknown): Promise<T> {
  const r = await api<T>(method, urlPath, body);
  if (r.status >= 300) throw new Error(`${method} ${urlPath} → HTTP ${r.status}: ${JSON.stringify(r.body).slice(0, 500)}`);
  return r.body;
}

interface StatusHost {
  name: string;
  connected: boolean;
  behind: boolean;
}
/** From the server's own view (GET /v1/status): how many simulated hosts are connected and in sync. */
async function serverView(): Promise<{ connected: number; inSync: number; revision: number }> {
  let st: { revision: number; hosts: StatusHost[] };
  try {
    st = await apiOk<{ revision: number; hosts: StatusHost[] }>('GET', '/v1/status');
  } catch (e) {
    // An overloaded server may not answer in time; that is a finding, not a reason to stop.
    progress(`GET /v1/status failed: ${(e as Error).message}`);
    return { connected: -1, inSync: -1, revision: -1 };
  }
  let connected = 0;
  let inSync = 0;
  for (const h of st.hosts) {
    if (!h.name.startsWith('sim-')) continue;
    if (h.connected) connected++;
    if (h.connected && !h.behind) inSync++;
  }
  return { connected, inSync, revision: st.revision };
}

// ---- phases --------------------------------------------------------------------------------------------

function startClients(caPem: string, joinToken: string, trustDomain: string): Promise<void> {
  const per: number[][] = Array.from({ length: opts.clients }, () => []);
  for (let i = 0; i < opts.agents; i++) per[i % opts.clients]!.push(i);
  const ready: Promise<void>[] = [];
  for (let w = 0; w < opts.clients; w++) {
    const child = fork(CLIENT, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'advanced',
      execArgv: opts.clientProf ? ['--cpu-prof', '--cpu-prof-dir', opts.clientProf] : [],
    });
    children.push(child);
    child.on('message', (m: ClientToParent) => onChildMessage(m));
    child.on('exit', (code, signal) => {
      if (phase !== 'cleanup' && phase !== 'done') fatal ??= `client process ${w} exited (${code ?? signal}) during ${phase}`;
    });
    ready.push(
      new Promise<void>((resolve) => {
        const onReady = (m: ClientToParent): void => {
          if (m.type === 'ready') {
            child.off('message', onReady);
            resolve();
          }
        };
        child.on('message', onReady);
      }),
    );
    child.send({
      type: 'init',
      worker: w,
      indices: per[w]!,
      port,
      caPem,
      joinToken,
      trustDomain,
      serviceCount: opts.services,
      joinConcurrency: Math.max(1, Math.ceil(opts.joinConcurrency / opts.clients)),
      connectConcurrency: opts.connectConcurrency,
      fullCheck: opts.fullCheck,
    } satisfies ParentToClient);
  }
  return Promise.all(ready).then(() => undefined);
}

async function joinPhase(): Promise<{ ms: number; failed: number }> {
  const t0 = now();
  let failed = 0;
  const progressByWorker = new Map<number, number>();
  const done = new Promise<void>((resolve) => {
    let finished = 0;
    for (const c of children) {
      c.on('message', (m: ClientToParent) => {
        if (m.type === 'join-progress') {
          progressByWorker.set(m.worker, m.done);
        } else if (m.type === 'joined') {
          joinedIdx.push(...m.joined);
          failed += m.failed;
          if (++finished === children.length) resolve();
        }
      });
    }
  });
  for (const c of children) c.send({ type: 'join' } satisfies ParentToClient);
  const ticker = setInterval(() => {
    const n = [...progressByWorker.values()].reduce((a, b) => a + b, 0);
    progress(`joining: ${n}/${opts.agents}`);
  }, 5_000);
  await done;
  clearInterval(ticker);
  joinedIdx.sort((a, b) => a - b);
  return { ms: now() - t0, failed };
}

async function connectPhase(): Promise<{ allOpenMs: number; settledMs: number; connected: number; inSync: number }> {
  const t0 = now();
  for (const c of children) c.send({ type: 'connect' } satisfies ParentToClient);
  const N = joinedIdx.length;
  let allOpenMs = NaN;
  let lastReport = now();
  const allOpen = await waitFor(async () => {
    if (fatal) throw new Error(fatal);
    if (now() - lastReport > 10_000) {
      lastReport = now();
      const st = sumStats(await collectStats());
      progress(`connecting: ${arrivals.size}/${N} connected, ${maxAcked.size} got a snapshot; failures ${JSON.stringify(st.connectFailures)}; ${st.errorSamples.slice(0, 3).join(' | ')}`);
    }
    // Done when every agent is in (hello sent, first snapshot acked) or was refused for good.
    return joinedIdx.every((i) => (arrivals.has(i) && maxAcked.has(i)) || (refused.has(i) && !arrivals.has(i)));
  }, opts.connectWaitS * 1000, 50);
  allOpenMs = now() - t0;
  active = joinedIdx.filter((i) => arrivals.has(i) && maxAcked.has(i));
  const Nact = active.length;
  if (!allOpen) progress(`only ${arrivals.size}/${N} agents connected (${maxAcked.size} got a snapshot) within ${opts.connectWaitS} s`);
  else if (Nact < N) progress(`${Nact}/${N} agents connected; ${N - Nact} were refused by the server (see the error samples); measuring the ${Nact}`);
  else progress(`all ${N} agents connected and got their first snapshot in ${(allOpenMs / 1000).toFixed(1)} s; waiting for the pushes to settle`);
  // Each hello adds an instance, so agents keep receiving new endpoint sets until the last hello:
  // settled means no ack for 1.5 s and the server sees everyone connected and in sync.
  let view = { connected: 0, inSync: 0, revision: 0 };
  await waitFor(async () => {
    if (now() - lastAckAt < 1_500) return false;
    view = await serverView();
    return view.connected >= Nact && view.inSync >= Nact;
  }, 120_000, 500);
  return { allOpenMs, settledMs: now() - t0, connected: view.connected, inSync: view.inSync };
}

interface WriteResult {
  revision: number;
  httpMs: number;
  firstAckMs: number;
  lastAckMs: number;
  acked: number;
}

async function writesPhase(): Promise<WriteResult[]> {
  const N = active.length;
  const measured = new Set(active);
  const results: WriteResult[] = [];
  let access: 'allow' | 'deny' = 'allow';
  for (let k = 0; k < opts.writes; k++) {
    if (fatal) throw new Error(fatal);
    const buffered: Array<[number, number, number]> = [];
    let target = Infinity;
    const firstAt = new Map<number, number>();
    let minAt = Infinity;
    const take = (idx: number, rev: number, at: number): void => {
      if (rev >= target && !firstAt.has(idx) && measured.has(idx)) {
        firstAt.set(idx, at);
        if (at < minAt) minAt = at;
      }
    };
    ackSink = (idx, rev, at) => (target === Infinity ? buffered.push([idx, rev, at]) : take(idx, rev, at));
    const t0 = now();
    const res = await api<{ status?: { revision?: number } }>('PUT', '/v1/resources/Mesh/default', { kind: 'Mesh', name: 'default', spec: { defaultAccess: access } });
    const httpMs = now() - t0;
    if (res.status >= 300 || typeof res.body?.status?.revision !== 'number') {
      throw new Error(`PUT Mesh/default → HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
    }
    target = res.body.status.revision;
    for (const [idx, rev, at] of buffered) take(idx, rev, at);
    const all = await waitFor(() => firstAt.size >= N, 60_000, 2);
    ackSink = null;
    const lastAt = Math.max(...firstAt.values());
    const r: WriteResult = { revision: target, httpMs, firstAckMs: minAt - t0, lastAckMs: all ? lastAt - t0 : Infinity, acked: firstAt.size };
    results.push(r);
    progress(`write ${k + 1}/${opts.writes}: revision ${target}, HTTP ${httpMs.toFixed(0)} ms, first ack ${r.firstAckMs.toFixed(0)} ms, all ${r.acked}/${N} acked ${all ? `${r.lastAckMs.toFixed(0)} ms` : 'NOT within 60 s'}`);
    access = access === 'allow' ? 'deny' : 'allow';
    await sleep(300);
  }
  return results;
}

interface ReconnectResult {
  stopMs: number;
  startMs: number;
  back: number;
  missing: number;
  /** From the new server accepting connections to the last agent back. */
  allBackMs: number;
  /** Arrivals per calendar second, from the second in which the new server accepted connections. */
  histogram: number[];
  maxSecondShare: number;
  /** The same over any sliding one-second window. */
  maxSlidingShare: number;
  resyncedMs: number;
  inSync: number;
}

async function reconnectPhase(): Promise<ReconnectResult> {
  const N = active.length;
  const tKill = now();
  progress('restart: SIGTERM to the server');
  await server!.stop();
  const stopMs = now() - tKill;
  const t1 = now();
  await server!.start();
  const tReady = now();
  progress(`restart: server down in ${stopMs.toFixed(0)} ms, up again in ${(tReady - t1).toFixed(0)} ms; waiting for agents (up to ${opts.reconnectWaitS} s)`);
  const backAt = (i: number): number | undefined => arrivals.get(i)?.find((t) => t > tKill);
  let lastReport = now();
  await waitFor(() => {
    if (fatal) throw new Error(fatal);
    let back = 0;
    for (const i of active) if (backAt(i) !== undefined) back++;
    if (now() - lastReport > 5_000) {
      lastReport = now();
      progress(`restart: ${back}/${N} back after ${((now() - tReady) / 1000).toFixed(0)} s`);
    }
    return back >= N;
  }, opts.reconnectWaitS * 1000, 100);
  const times: number[] = [];
  for (const i of active) {
    const t = backAt(i);
    if (t !== undefined) times.push(t);
  }
  times.sort((a, b) => a - b);
  const histogram: number[] = [];
  // Calendar seconds (as a per-second metric or log would count them), from the one the server came back in.
  for (const t of times) {
    const b = Math.max(0, Math.floor(t / 1000) - Math.floor(tReady / 1000));
    while (histogram.length <= b) histogram.push(0);
    histogram[b]!++;
  }
  let maxSliding = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= 1000) j++;
    maxSliding = Math.max(maxSliding, i - j + 1);
  }
  // Back is not yet in sync: wait until the server sees them all at the current config.
  let view = { connected: 0, inSync: 0, revision: 0 };
  await waitFor(async () => {
    view = await serverView();
    return view.inSync >= times.length;
  }, 30_000, 500);
  return {
    stopMs,
    startMs: tReady - t1,
    back: times.length,
    missing: N - times.length,
    allBackMs: times.length > 0 ? times[times.length - 1]! - tReady : NaN,
    histogram,
    maxSecondShare: N > 0 ? Math.max(0, ...histogram) / N : 0,
    maxSlidingShare: N > 0 ? maxSliding / N : 0,
    resyncedMs: now() - tReady,
    inSync: view.inSync,
  };
}

/** The server's RSS (and JS heap), after a forced full GC unless --no-gc. */
async function measureMemory(): Promise<{ rss: number; hwm: number; heap: number | null }> {
  const gc = opts.gc ? await server!.collectGarbage() : null;
  if (opts.gc && !gc) progress('could not force a GC in the server through the inspector; reading RSS as is');
  return { ...server!.memory(), heap: gc?.heapUsed ?? null };
}

// ---- cleanup -------------------------------------------------------------------------------------------

let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  phase = 'cleanup';
  for (const c of children) {
    if (c.connected) c.send({ type: 'stop' } satisfies ParentToClient);
  }
  await waitFor(() => children.every((c) => c.exitCode !== null || c.signalCode !== null), 3_000, 50);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (server?.running) {
    // With --server-prof the profile is written on a graceful exit only.
    if (opts?.serverProf) await server.stop(60_000);
    else server.kill();
  }
  await dispatcher?.close().catch(() => undefined);
  if (tmp) {
    if (opts?.keep) progress(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function killAllSync(): void {
  server?.kill();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (tmp && !opts?.keep) fs.rmSync(tmp, { recursive: true, force: true });
}

// ---- report -------------------------------------------------------------------------------------------

interface Verdict {
  target: string;
  value: string;
  pass: boolean | null;
}

function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}

async function main(): Promise<void> {
  opts = parseArgs(process.argv.slice(2));
  quiet = false;
  const limits = fdLimits();
  const limit = limits?.soft ?? null;
  const need = opts.agents + 512;
  if (limits !== null && limits.soft < need) {
    throw new Error(
      `the open-files limit (ulimit -n) is ${limits.soft}, too low for ${opts.agents} agents: the server needs one descriptor per agent (≈ ${need}). ` +
        (limits.hard >= need
          ? `Raise it, e.g. bash -c 'ulimit -n ${Math.min(limits.hard, 65536)}; npm run bench:control -- --agents ${opts.agents}'`
          : `The hard limit is ${limits.hard} too: raise it first (limits.conf, systemd LimitNOFILE, or prlimit --nofile), then ulimit -n`),
    );
  }
  const abortTimer = setTimeout(() => {
    process.stderr.write(`\nbench:control: aborted after the ${opts.timeoutMin}-minute limit during the ${phase} phase; stopping every process it started.\n`);
    void cleanup().finally(() => process.exit(2));
  }, opts.timeoutMin * 60_000);
  abortTimer.unref();

  if (opts.agents >= 2000 && opts.timeoutMin <= 10) {
    progress(`note: with ${opts.agents} agents the whole run may need more than ${opts.timeoutMin} minutes (the initial connection of 5000 took ~20 min on 2 CPUs); raise --timeout-min and --connect-wait-s if it aborts`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hostmesh-bench-'));
  const dataDir = path.join(tmp, 'data');
  port = await freePort();
  if (opts.serverProf) fs.mkdirSync(opts.serverProf, { recursive: true });
  if (opts.clientProf) fs.mkdirSync(opts.clientProf, { recursive: true });
  server = new ServerProc({ cli: CLI, dataDir, port, logLevel: opts.serverLogLevel, profDir: opts.serverProf, logFile: path.join(tmp, 'server.log'), inspect: opts.gc });
  progress(`starting the server on 127.0.0.1:${port} (data ${dataDir}); ${opts.agents} agents over ${opts.clients} client processes, ${os.cpus().length} CPUs, fd limit ${limit ?? '?'}`);
  await server.start();
  adminToken = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const caPem = fs.readFileSync(path.join(dataDir, 'ca', 'root.crt.pem'), 'utf8');
  dispatcher = new Agent({ connect: { ca: caPem, timeout: 30_000 }, keepAliveTimeout: 10_000 });

  const services = Array.from({ length: opts.services }, (_, i) => ({ kind: 'Service', name: svcName(i), spec: { protocol: i % 3 === 2 ? 'tcp' : 'http', port: 8080 } }));
  await apiOk('POST', '/v1/apply', {
    documents: [
      { kind: 'Mesh', name: 'default', spec: { mtls: 'strict', defaultAccess: 'deny', certTTL: '24h' } },
      ...services,
      { kind: 'AccessPolicy', name: svcName(0), spec: { service: svcName(0), mode: 'enforce', rules: [{ from: [svcName(1)], action: 'allow' }] } },
    ],
  });
  const joinToken = (await apiOk<{ token: string }>('POST', '/v1/tokens', { ttl: '2h' })).token;
  const trustDomain = (await apiOk<{ trustDomain: string }>('GET', '/v1/status')).trustDomain;

  const memBaseline = await measureMemory();
  progress(`server RSS before any agent: ${(memBaseline.rss / 1048576).toFixed(1)} MB`);

  phase = 'join';
  await startClients(caPem, joinToken, trustDomain);
  const join = await joinPhase();
  const N = joinedIdx.length;
  progress(`joined ${N}/${opts.agents} in ${(join.ms / 1000).toFixed(1)} s (${fmt(N / (join.ms / 1000))}/s), ${join.failed} failed`);
  const joinStats = sumStats(await collectStats());
  if (N === 0) throw new Error(`no agent could join: ${joinStats.joinErrors.join('; ')}`);
  await sleep(1_000);
  const memJoined = await measureMemory();

  phase = 'connect';
  const cpuConnect0 = server.cpuMs();
  const connect = await connectPhase();
  const connectCpuMs = server.cpuMs() - cpuConnect0;
  const connectStats = sumStats(await collectStats());
  const Nj = N;
  const M = active.length;
  if (M === 0) throw new Error(`no agent could connect: ${connectStats.errorSamples.slice(0, 3).join('; ')}`);
  progress(`connect: ${connect.connected}/${M} connected, ${connect.inSync} in sync after ${(connect.settledMs / 1000).toFixed(1)} s; ${connectStats.snapshots} snapshots (${(connectStats.snapshotBytes / 1048576).toFixed(0)} MB) received; server CPU ${(connectCpuMs / 1000).toFixed(1)} s`);
  await sleep(2_000);
  const memConnected = await measureMemory();
  const perAgentKB = (memConnected.rss - memBaseline.rss) / M / 1024;
  const perAgentConnectOnlyKB = (memConnected.rss - memJoined.rss) / M / 1024;
  const heapPerAgentKB = memConnected.heap !== null && memBaseline.heap !== null ? (memConnected.heap - memBaseline.heap) / M / 1024 : null;
  progress(`server RSS: ${(memBaseline.rss / 1048576).toFixed(1)} MB before, ${(memJoined.rss / 1048576).toFixed(1)} MB joined, ${(memConnected.rss / 1048576).toFixed(1)} MB connected → ${perAgentKB.toFixed(1)} KB/agent`);

  phase = 'writes';
  const loadBeforeWrites = os.loadavg()[0]!;
  const before = sumStats(await collectStats());
  const cpuW0 = server.cpuMs();
  const writes = await writesPhase();
  const writesCpuMs = server.cpuMs() - cpuW0;
  const loadAfterWrites = os.loadavg()[0]!;
  if (Math.max(loadBeforeWrites, loadAfterWrites) > os.cpus().length * 1.5) {
    progress(`note: the machine was busy beyond this benchmark (load average ${loadBeforeWrites.toFixed(1)} → ${loadAfterWrites.toFixed(1)} on ${os.cpus().length} CPUs); latencies are inflated, the server CPU per write is the steadier figure`);
  }
  const afterWrites = sumStats(await collectStats());
  const memAfterWrites = await measureMemory();
  const lat = writes.map((w) => w.lastAckMs);
  const completed = writes.filter((w) => w.acked >= M);
  const snapshotBytesPerWrite = (afterWrites.snapshotBytes - before.snapshotBytes) / writes.length;
  const clientCpuPerWrite = (afterWrites.cpuMs - before.cpuMs) / writes.length;

  phase = 'reconnect';
  const reconnect = await reconnectPhase();
  progress(`restart: ${reconnect.back}/${M} back, last after ${fmt(reconnect.allBackMs / 1000, 1)} s, busiest second ${(reconnect.maxSecondShare * 100).toFixed(1)} %; ${reconnect.inSync} in sync`);
  const final = sumStats(await collectStats());
  const clientCpuRestartMs = final.cpuMs - afterWrites.cpuMs;

  const serverEmfile = /EMFILE|ENFILE/.test(server.output());
  phase = 'done';
  await cleanup();
  clearTimeout(abortTimer);

  // ---- verdicts ----
  const p50 = percentile(lat, 50);
  const p99 = percentile(lat, 99);
  const latTarget = M <= 1000 ? 250 : M >= 5000 ? 1000 : 250 + ((M - 1000) / 4000) * 750;
  const errors = {
    failedJoins: join.failed,
    neverConnected: Nj - M,
    hashMismatches: final.hashMismatches,
    invalidMessages: final.invalidMessages,
    serverErrorMessages: final.serverErrors,
    refusedUpgrades: final.refusedUpgrades,
    writesNotFullyAcked: writes.length - completed.length,
    /** Open connections that closed before the restart (the server dropped them). */
    unexpectedDisconnects: afterWrites.closes,
    notBackAfterRestart: reconnect.missing,
    emfile: final.emfile || serverEmfile,
  };
  const errorTotal = Object.values(errors).reduce<number>((a, v) => a + (typeof v === 'number' ? v : v ? 1 : 0), 0);
  const verdicts: Verdict[] = [
    { target: `write → all acked p99 ≤ ${fmt(latTarget)} ms at ${M} agents`, value: `${fmt(p99, 1)} ms`, pass: completed.length === writes.length && p99 <= latTarget },
    { target: 'server memory ≤ 200 KB per connected agent', value: `${fmt(perAgentKB, 1)} KB`, pass: perAgentKB <= 200 },
    { target: 'all agents back within 30 s of a restart', value: `${reconnect.back}/${M} in ${fmt(reconnect.allBackMs / 1000, 1)} s`, pass: reconnect.missing === 0 && reconnect.allBackMs <= 30_000 },
    { target: 'no second with > 10 % of the agents arriving', value: `${fmt(reconnect.maxSecondShare * 100, 1)} %`, pass: reconnect.maxSecondShare <= 0.1 },
    { target: '5000 agents held by one server', value: `${connect.connected} connected`, pass: opts.agents >= 5000 ? connect.connected >= 5000 : null },
    { target: 'no errors', value: String(errorTotal), pass: errorTotal === 0 },
  ];

  const figures = {
    agents: M,
    joinedAgents: Nj,
    requestedAgents: opts.agents,
    clients: opts.clients,
    services: opts.services,
    cpus: os.cpus().length,
    fullCheck: opts.fullCheck,
    join: { seconds: join.ms / 1000, perSecond: Nj / (join.ms / 1000) },
    connect: {
      allConnectedSeconds: connect.allOpenMs / 1000,
      settledSeconds: connect.settledMs / 1000,
      snapshots: connectStats.snapshots,
      snapshotMB: connectStats.snapshotBytes / 1048576,
      serverCpuSeconds: connectCpuMs / 1000,
    },
    writeToAllAcked: {
      writes: writes.length,
      p50Ms: p50,
      p99Ms: p99,
      maxMs: Math.max(...lat),
      firstAckP50Ms: percentile(writes.map((w) => w.firstAckMs), 50),
      httpP50Ms: percentile(writes.map((w) => w.httpMs), 50),
      snapshotBytesPerAgent: snapshotBytesPerWrite / M,
      serverCpuMsPerWrite: writesCpuMs / writes.length,
      loadAverage1m: [loadBeforeWrites, loadAfterWrites],
      clientCpuMsPerWrite: clientCpuPerWrite,
      samplesMs: lat,
    },
    memory: {
      rssBeforeMB: memBaseline.rss / 1048576,
      rssJoinedMB: memJoined.rss / 1048576,
      rssConnectedMB: memConnected.rss / 1048576,
      rssAfterWritesMB: memAfterWrites.rss / 1048576,
      peakRssMB: memAfterWrites.hwm / 1048576,
      perAgentKB,
      perAgentConnectOnlyKB,
      perAgentAfterWritesKB: (memAfterWrites.rss - memBaseline.rss) / M / 1024,
      forcedGc: memConnected.heap !== null,
      heapBeforeMB: memBaseline.heap === null ? null : memBaseline.heap / 1048576,
      heapConnectedMB: memConnected.heap === null ? null : memConnected.heap / 1048576,
      heapPerAgentKB: heapPerAgentKB,
    },
    reconnect: {
      serverStopSeconds: reconnect.stopMs / 1000,
      serverStartSeconds: reconnect.startMs / 1000,
      back: reconnect.back,
      allBackSeconds: reconnect.allBackMs / 1000,
      arrivalsPerSecond: reconnect.histogram,
      maxSecondSharePct: reconnect.maxSecondShare * 100,
      maxSlidingSecondSharePct: reconnect.maxSlidingShare * 100,
      inSyncAfter: reconnect.inSync,
      resyncedSeconds: reconnect.resyncedMs / 1000,
      clientCpuSeconds: clientCpuRestartMs / 1000,
    },
    snapshotChecks: { received: final.snapshots, deltas: final.deltas, deltaBaseMismatches: final.deltaBaseMismatches, fullyVerified: final.fullyVerified, fullCheck: opts.fullCheck },
    errors,
    errorSamples: [...final.joinErrors, ...final.errorSamples].slice(0, 10),
    connectFailures: final.connectFailures,
    closeReasonsBeforeRestart: afterWrites.closeReasons,
    verdicts,
  };

  if (opts.json) {
    process.stdout.write(JSON.stringify(figures, null, 2) + '\n');
    return;
  }
  const rows: Array<[string, string]> = [
    ['agents (connected / joined / requested)', `${M} / ${Nj} / ${opts.agents}  (${opts.clients} client processes, ${opts.services} services, ${os.cpus().length} CPUs shared by all)`],
    ['join', `${fmt(join.ms / 1000, 1)} s (${fmt(Nj / (join.ms / 1000))}/s)`],
    ['connect: all connected / settled', `${fmt(connect.allOpenMs / 1000, 1)} s / ${fmt(connect.settledMs / 1000, 1)} s; ${connectStats.snapshots} snapshots, ${fmt(connectStats.snapshotBytes / 1048576)} MB; server CPU ${fmt(connectCpuMs / 1000, 1)} s`],
    ['write → all acked p50 / p99', `${fmt(p50, 1)} / ${fmt(p99, 1)} ms over ${writes.length} writes (max ${fmt(Math.max(...lat), 1)}, first ack p50 ${fmt(figures.writeToAllAcked.firstAckP50Ms, 1)}, HTTP p50 ${fmt(figures.writeToAllAcked.httpP50Ms, 1)})`],
    ['  per write', `snapshot ${fmt(snapshotBytesPerWrite / M / 1024, 1)} KB/agent; server CPU ${fmt(writesCpuMs / writes.length)} ms; client CPU ${fmt(clientCpuPerWrite)} ms; load avg ${fmt(loadBeforeWrites, 1)} → ${fmt(loadAfterWrites, 1)}`],
    ['server RSS before / joined / connected', `${fmt(memBaseline.rss / 1048576, 1)} / ${fmt(memJoined.rss / 1048576, 1)} / ${fmt(memConnected.rss / 1048576, 1)} MB (after writes ${fmt(memAfterWrites.rss / 1048576, 1)}, peak ${fmt(memAfterWrites.hwm / 1048576, 1)})`],
    [
      'memory per agent (RSS)',
      `${fmt(perAgentKB, 1)} KB (connect alone ${fmt(perAgentConnectOnlyKB, 1)}, after the writes ${fmt(figures.memory.perAgentAfterWritesKB, 1)}; JS heap ${heapPerAgentKB === null ? 'n/a' : fmt(heapPerAgentKB, 1)} KB)${memConnected.heap !== null ? ', each reading after a forced GC' : ''}`,
    ],
    ['restart: server stop / start', `${fmt(reconnect.stopMs / 1000, 2)} s / ${fmt(reconnect.startMs / 1000, 2)} s (client processes used ${fmt(clientCpuRestartMs / 1000, 1)} s CPU in this phase)`],
    ['restart: all back', `${reconnect.back}/${M} in ${fmt(reconnect.allBackMs / 1000, 1)} s; in sync ${reconnect.inSync} after ${fmt(reconnect.resyncedMs / 1000, 1)} s`],
    ['restart: busiest second', `${fmt(reconnect.maxSecondShare * 100, 1)} % (sliding 1 s window ${fmt(reconnect.maxSlidingShare * 100, 1)} %)`],
    ['restart: arrivals per second', reconnect.histogram.join(' ')],
    [
      'snapshots checked',
      `${final.snapshots}, of which ${final.deltas} deltas (${final.deltaBaseMismatches} on a stale base, nacked); ${final.fullyVerified} parsed and hashed, the rest byte-identical to one that was${opts.fullCheck ? '' : ', see --full-check'}`,
    ],
    ['errors', Object.entries(errors).filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join(', ') || 'none'],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  let out = `\nhostmesh control-plane benchmark\n${'-'.repeat(72)}\n`;
  for (const [k, v] of rows) out += `${k.padEnd(w)}  ${v}\n`;
  if (afterWrites.closes > 0) out += `disconnects before the restart (code reason → count): ${JSON.stringify(afterWrites.closeReasons)}\n`;
  if (figures.errorSamples.length > 0) out += `error samples:\n${figures.errorSamples.map((s) => `  ${s}`).join('\n')}\n`;
  out += `\ntargets (issue 3)\n${'-'.repeat(72)}\n`;
  const tw = Math.max(...verdicts.map((v) => v.target.length));
  for (const v of verdicts) out += `${v.pass === null ? 'n/a ' : v.pass ? 'PASS' : 'FAIL'}  ${v.target.padEnd(tw)}  ${v.value}\n`;
  process.stdout.write(out);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\nbench:control: ${sig}; stopping every process it started\n`);
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', killAllSync);

main().catch(async (e: unknown) => {
  const err = e as NodeJS.ErrnoException;
  let msg = err?.message ?? String(e);
  if (err?.code === 'EMFILE' || /EMFILE/.test(msg) || /EMFILE/.test(server?.output() ?? '')) msg += `\n(out of file descriptors: raise \`ulimit -n\`, e.g. bash -c 'ulimit -n 65536; npm run bench:control ...')`;
  process.stderr.write(`bench:control failed during the ${phase} phase: ${msg}\n`);
  if (server?.output() && phase !== 'setup') process.stderr.write(`last server output:\n${server.output()}\n`);
  await cleanup();
  process.exit(1);
});
