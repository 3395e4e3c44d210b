// One client process of the control-plane benchmark: it runs a share of the simulated agents. Each
// simulated agent is a lightweight client, not a full agent: its own P-256 key and host certificate
// (joined with the real /v1/join), one WebSocket over mutual TLS, a real `hello`, and for every
// snapshot the checks a real agent makes (schema, hashOf(slice) === hash) before it acks. It
// reconnects like the real agent: exponential backoff with full jitter, base 1 s, cap 30 s, reset
// only after a connection that held 10 s (mirrors agent/control/connection.ts).
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import tls from 'node:tls';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { Backoff } from '../../shared/backoff.js';
import { hashOf } from '../../shared/canonical.js';
import { generateKeyAndCsr } from '../../shared/csr.js';
import { applySlicePatch } from '../../shared/slice-patch.js';
import { formatSpiffeId } from '../../shared/identity.js';
import {
  AGENT_WS_PATH,
  decodeServerMessage,
  JOIN_PATH,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  type AgentMessage,
  type HelloMsg,
  type JoinRequest,
  type JoinResponse,
  type Slice,
} from '../../shared/protocol.js';
import { agentShape, now, type ClientInit, type ClientStats, type ClientToParent, type ParentToClient } from './common.js';

const RECONNECT_BACKOFF = { baseMs: 1_000, capMs: 10_000 } as const; // as agent/control/connection.ts
const STABLE_AFTER_MS = 10_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;

interface SimAgent {
  idx: number;
  name: string;
  service: string;
  upstreams: string[];
  inboundPort: number;
  keyPem: string;
  chainPem: string;
  ws: WebSocket | null;
  backoff: Backoff;
  /** Built once: parsing the key, chain and CA on every attempt made thousands of retries CPU-bound. */
  tlsContext: tls.SecureContext | null;
  retryAfterMs: number | null;
  appliedRevision: number | null;
  appliedHash: string | null;
  started: boolean;
}

let init!: ClientInit;
const agents: SimAgent[] = [];
let stopping = false;

const stats: ClientStats = {
  worker: -1,
  joined: 0,
  failedJoins: 0,
  joinErrors: [],
  snapshots: 0,
  snapshotBytes: 0,
  fullyVerified: 0,
  hashMismatches: 0,
  invalidMessages: 0,
  serverErrors: 0,
  refusedUpgrades: 0,
  errorSamples: [],
  connectFailures: {},
  closes: 0,
  closeReasons: {},
  emfile: false,
  cpuMs: 0,
  shutdownRefusals: 0,
  deltas: 0,
  deltaBaseMismatches: 0,
};

function send(msg: ClientToParent): void {
  if (process.connected) process.send!(msg);
}

function sample(list: string[], text: string): void {
  if (list.length < 10) list.push(text.slice(0, 300));
}

function noteEmfile(err: NodeJS.ErrnoException): void {
  if (err.code === 'EMFILE' || err.code === 'ENFILE') {
    if (!stats.emfile) {
      stats.emfile = true;
      send({
        type: 'fatal',
        worker: init.worker,
        message: `client process ${init.worker} ran out of file descriptors (${err.code}); raise the limit, e.g. \`bash -c 'ulimit -n 65536; npm run bench:control -- --agents ${init.indices.length * 2}'\``,
      });
    }
  }
}

// ---- batched reports to the parent ------------------------------------------------------------

let ackBatch: Array<[number, number, number]> = [];
let arrivalBatch: Array<[number, number]> = [];
let flushScheduled = false;
function scheduleFlush(): void {
  if (flushScheduled) return;
  flushScheduled = true;
  setTimeout(() => {
    flushScheduled = false;
    if (ackBatch.length > 0) send({ type: 'acks', worker: init.worker, items: ackBatch });
    if (arrivalBatch.length > 0) send({ type: 'arrivals', worker: init.worker, items: arrivalBatch });
    ackBatch = [];
    arrivalBatch = [];
  }, 5);
}

// ---- join ---------------------------------------------------------------------------------------

async function joinAll(): Promise<void> {
  const dispatcher = new Agent({ connect: { ca: init.caPem }, connections: init.joinConcurrency, keepAliveTimeout: 5_000 });
  const queue = [...init.indices];
  const joined: number[] = [];
  let done = 0;
  let lastReport = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = queue.shift();
      if (i === undefined) return;
      const shape = agentShape(i, init.serviceCount);
      try {
        const keys = await generateKeyAndCsr(formatSpiffeId({ trustDomain: init.trustDomain, kind: 'host', name: shape.name }));
        const body: JoinRequest = { token: init.joinToken, host: shape.name, csr: keys.csrPem, services: [shape.service] };
        const res = await request(`https://127.0.0.1:${init.port}${JOIN_PATH}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          dispatcher,
          headersTimeout: 60_000,
          bodyTimeout: 60_000,
        });
        const text = await res.body.text();
        if (res.statusCode !== 201) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
        const j = JSON.parse(text) as JoinResponse;
        agents.push({
          idx: i,
          ...shape,
          keyPem: keys.keyPem,
          chainPem: j.chainPem,
          ws: null,
          backoff: new Backoff(RECONNECT_BACKOFF),
          tlsContext: null,
          retryAfterMs: null,
          appliedRevision: null,
          appliedHash: null,
          started: false,
        });
        joined.push(i);
        stats.joined++;
      } catch (e) {
        stats.failedJoins++;
        noteEmfile(e as NodeJS.ErrnoException);
        sample(stats.joinErrors, `${shape.name}: ${(e as Error).message}`);
      }
      done++;
      if (now() - lastReport > 500) {
        lastReport = now();
        send({ type: 'join-progress', worker: init.worker, done, failed: stats.failedJoins });
      }
    }
  };
  await Promise.all(Array.from({ length: init.joinConcurrency }, worker));
  await dispatcher.close();
  agents.sort((a, b) => a.idx - b.idx);
  send({ type: 'joined', worker: init.worker, joined, failed: stats.failedJoins });
}

// ---- the control connection ---------------------------------------------------------------------

function hello(a: SimAgent): HelloMsg {
  return {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    host: a.name,
    agentVersion: 'bench-sim',
    appliedRevision: a.appliedRevision,
    appliedHash: a.appliedHash,
    inbound: { address: '127.0.0.1', port: a.inboundPort },
    services: [{ name: a.service, port: 8080, labels: { version: a.idx % 2 === 0 ? 'v1' : 'v2' }, healthy: true }],
    upstreams: a.upstreams,
    facts: { simulated: true, os: 'linux', cpus: 2 },
  };
}

function wsSend(a: SimAgent, msg: AgentMessage): void {
  if (a.ws && a.ws.readyState === WebSocket.OPEN) a.ws.send(JSON.stringify(msg));
}

/** What a snapshot or delta frame says, after the checks; identical bytes verify identically. */
interface Verdict {
  ok: boolean;
  revision: number;
  hash: string;
  /** For a delta: the slice it applies to (an agent on another one nacks it, as a real agent does). */
  baseHash?: string;
  error?: string;
  mismatch?: boolean;
}
const verdicts = new Map<string, Verdict>();
/** Slices by hash, shared by the simulated agents that applied them: the bases of deltas. */
const slices = new Map<string, Slice>();

function pruneSlices(): void {
  if (slices.size <= 64) return;
  const inUse = new Set(agents.map((a) => a.appliedHash));
  for (const h of slices.keys()) if (!inUse.has(h)) slices.delete(h);
}

function check(revision: number, hash: string, slice: unknown, baseHash?: string): Verdict {
  stats.fullyVerified++;
  const actual = hashOf(slice);
  if (actual !== hash) return { ok: false, mismatch: true, revision, hash, error: `slice hashes to ${actual}, message says ${hash}`, ...(baseHash ? { baseHash } : {}) };
  slices.set(hash, slice as Slice);
  return { ok: true, revision, hash, ...(baseHash ? { baseHash } : {}) };
}

function verify(raw: Buffer): Verdict | { other: string } {
  let key: string | null = null;
  if (!init.fullCheck) {
    key = createHash('sha256').update(raw).digest('base64');
    const seen = verdicts.get(key);
    if (seen && (!seen.ok || slices.has(seen.hash))) return seen;
  }
  const d = decodeServerMessage(raw);
  let v: Verdict;
  if (!d.ok) {
    if (d.type && d.type !== 'snapshot' && d.type !== 'delta') return { other: `invalid ${d.type}: ${d.error}` };
    v = { ok: false, revision: -1, hash: '', error: d.error };
  } else if (d.msg.type === 'snapshot') {
    v = check(d.msg.revision, d.msg.hash, d.msg.slice);
  } else if (d.msg.type === 'delta') {
    const base = slices.get(d.msg.baseHash);
    if (!base) return { ok: false, revision: d.msg.revision, hash: d.msg.hash, baseHash: d.msg.baseHash, error: `delta base ${d.msg.baseHash} unknown` };
    try {
      v = check(d.msg.revision, d.msg.hash, applySlicePatch(base, d.msg.patch), d.msg.baseHash);
    } catch (e) {
      v = { ok: false, revision: d.msg.revision, hash: d.msg.hash, error: `invalid delta: ${(e as Error).message}` };
    }
  } else {
    return { other: d.msg.type };
  }
  if (key !== null) {
    if (verdicts.size > 256) verdicts.clear();
    verdicts.set(key, v);
  }
  return v;
}

function onFrame(a: SimAgent, raw: Buffer): void {
  // Cheap peek so pings and errors skip the snapshot path.
  const head = raw.subarray(0, 40).toString('utf8');
  if (!head.includes('"snapshot"') && !head.includes('"delta"')) {
    const d = decodeServerMessage(raw);
    if (!d.ok) {
      stats.invalidMessages++;
      sample(stats.errorSamples, `${a.name}: invalid server message: ${d.error}`);
    } else if (d.msg.type === 'error') {
      stats.serverErrors++;
      sample(stats.errorSamples, `${a.name}: server error ${d.msg.code}: ${d.msg.message}`);
    } else if (d.msg.type === 'snapshot' || d.msg.type === 'delta') {
      onSnapshot(a, raw); // a snapshot whose "type" is not its first field
    } else if (d.msg.type !== 'ping') {
      stats.invalidMessages++;
      sample(stats.errorSamples, `${a.name}: unexpected ${d.msg.type}`);
    }
    return;
  }
  onSnapshot(a, raw);
}

function onSnapshot(a: SimAgent, raw: Buffer): void {
  stats.snapshots++;
  stats.snapshotBytes += raw.length;
  if (raw.subarray(0, 40).includes('"delta"')) stats.deltas++;
  const v = verify(raw);
  if ('other' in v) {
    stats.invalidMessages++;
    sample(stats.errorSamples, `${a.name}: ${v.other}`);
    return;
  }
  if (v.ok && v.baseHash !== undefined && v.baseHash !== a.appliedHash) {
    // Not this agent's base: a real agent nacks and the server sends the whole snapshot.
    stats.deltaBaseMismatches++;
    wsSend(a, { type: 'nack', revision: v.revision, hash: v.hash, error: `delta is based on ${v.baseHash} but the applied config is ${a.appliedHash ?? 'none'}` });
    return;
  }
  if (!v.ok) {
    if (v.mismatch) stats.hashMismatches++;
    else stats.invalidMessages++;
    sample(stats.errorSamples, `${a.name}: bad snapshot: ${v.error}`);
    if (v.revision >= 0) wsSend(a, { type: 'nack', revision: v.revision, hash: v.hash, error: (v.error ?? 'invalid').slice(0, 2000) });
    return;
  }
  a.appliedRevision = v.revision;
  a.appliedHash = v.hash;
  pruneSlices();
  wsSend(a, { type: 'ack', revision: v.revision, hash: v.hash });
  ackBatch.push([a.idx, v.revision, now()]);
  scheduleFlush();
}

/** One connection's life; resolves with how long it was open (0 if it never opened). */
function connectOnce(a: SimAgent, onSettled: () => void): Promise<number> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (): void => {
      if (!settled) {
        settled = true;
        onSettled();
      }
    };
    let ws: WebSocket;
    try {
      a.tlsContext ??= tls.createSecureContext({ cert: a.chainPem, key: a.keyPem, ca: [init.caPem] });
      // The same certificate, key and CA as the real agent passes; `secureContext` goes to tls.connect.
      const options = { secureContext: a.tlsContext, maxPayload: MAX_FRAME_BYTES, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, perMessageDeflate: false };
      ws = new WebSocket(`wss://127.0.0.1:${init.port}${AGENT_WS_PATH}`, options as WebSocket.ClientOptions);
    } catch (e) {
      noteEmfile(e as NodeJS.ErrnoException);
      settle();
      resolve(0);
      return;
    }
    a.ws = ws;
    let openedAt: number | null = null;
    ws.on('open', () => {
      openedAt = now();
      ws.send(JSON.stringify(hello(a)));
      arrivalBatch.push([a.idx, openedAt]);
      scheduleFlush();
      settle();
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        stats.invalidMessages++;
        return;
      }
      onFrame(a, data);
    });
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      // Like the real agent: a 503 with Retry-After is a reserved second to come back in.
      const retryAfter = res.statusCode === 503 ? Number(res.headers['retry-after']) : NaN;
      if (Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 300) a.retryAfterMs = retryAfter * 1000 + Math.floor(Math.random() * 900);
      // 503 is the server saying it is shutting down or pacing arrivals: expected while it restarts.
      if (res.statusCode === 503) stats.shutdownRefusals++;
      else stats.refusedUpgrades++;
      if (res.statusCode === 401 || res.statusCode === 403) send({ type: 'refused', worker: init.worker, items: [a.idx] });
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 503) sample(stats.errorSamples, `${a.name}: upgrade refused: HTTP ${res.statusCode} ${body.slice(0, 200)}`);
      });
      ws.terminate();
    });
    ws.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? (/closed before the connection was established/.test(err.message) ? 'CLOSED_BEFORE_OPEN' : err.message.slice(0, 60));
      stats.connectFailures[code] = (stats.connectFailures[code] ?? 0) + 1;
      noteEmfile(err);
    });
    ws.on('close', (code: number, reason: Buffer) => {
      if (openedAt !== null && !stopping) {
        stats.closes++;
        const why = `${code} ${reason.toString('utf8').slice(0, 60)}`.trim();
        stats.closeReasons[why] = (stats.closeReasons[why] ?? 0) + 1;
      }
      if (a.ws === ws) a.ws = null;
      settle();
      resolve(openedAt === null ? 0 : now() - openedAt);
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function run(a: SimAgent, onFirstSettled: () => void): Promise<void> {
  let first = true;
  while (!stopping) {
    const upMs = await connectOnce(a, () => {
      if (first) {
        first = false;
        onFirstSettled();
      }
    });
    if (stopping) break;
    if (upMs >= STABLE_AFTER_MS) a.backoff.reset();
    const delay = a.retryAfterMs ?? a.backoff.next();
    a.retryAfterMs = null;
    await sleep(delay);
  }
}

/** Start every agent's connection loop, with at most `connectConcurrency` first handshakes in flight. */
async function connectAll(): Promise<void> {
  let inFlight = 0;
  let wake: (() => void) | null = null;
  for (const a of agents) {
    if (stopping) return;
    while (inFlight >= init.connectConcurrency) await new Promise<void>((r) => (wake = r));
    inFlight++;
    a.started = true;
    void run(a, () => {
      inFlight--;
      const w = wake;
      wake = null;
      w?.();
    });
  }
}

function currentStats(): ClientStats {
  const u = process.cpuUsage();
  return { ...stats, worker: init.worker, cpuMs: Math.round((u.user + u.system) / 1000) };
}

process.on('message', (m: ParentToClient) => {
  switch (m.type) {
    case 'init':
      init = m;
      stats.worker = m.worker;
      send({ type: 'ready', worker: m.worker });
      return;
    case 'join':
      void joinAll().catch((e: unknown) => send({ type: 'fatal', worker: init.worker, message: `join phase failed: ${(e as Error).stack ?? String(e)}` }));
      return;
    case 'connect':
      void connectAll();
      return;
    case 'stats':
      send({ type: 'stats', stats: currentStats() });
      return;
    case 'stop':
      stopping = true;
      for (const a of agents) a.ws?.terminate();
      send({ type: 'stats', stats: currentStats() });
      setTimeout(() => process.exit(0), 100);
      return;
  }
});

// The orchestrator going away (crash, abort) must not leave this process behind.
process.on('disconnect', () => process.exit(0));
process.on('uncaughtException', (e: NodeJS.ErrnoException) => {
  noteEmfile(e);
  send({ type: 'fatal', worker: init?.worker ?? -1, message: `uncaught: ${e.stack ?? e.message}` });
  setTimeout(() => process.exit(1), 100);
});
