// Shared by the control-plane benchmark's orchestrator (scripts/bench-control.ts) and its client
// processes (scripts/bench-control/client.ts): the IPC messages between them and a clock both agree on.
import { performance } from 'node:perf_hooks';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes on one machine. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export interface ClientInit {
  type: 'init';
  /** Index of this client process (0-based) and the simulated agents it runs. */
  worker: number;
  indices: number[];
  port: number;
  caPem: string;
  joinToken: string;
  trustDomain: string;
  serviceCount: number;
  joinConcurrency: number;
  connectConcurrency: number;
  /** Verify every snapshot fully even when its bytes equal a frame this process already verified. */
  fullCheck: boolean;
}

export type ParentToClient = ClientInit | { type: 'join' } | { type: 'connect' } | { type: 'stats' } | { type: 'stop' };

export interface ClientStats {
  worker: number;
  joined: number;
  failedJoins: number;
  joinErrors: string[];
  snapshots: number;
  snapshotBytes: number;
  /** Snapshots fully parsed, schema-checked and hashed (the rest matched the bytes of one that was). */
  fullyVerified: number;
  hashMismatches: number;
  invalidMessages: number;
  /** `error` messages from the server; upgrades refused with an HTTP status other than 503. */
  serverErrors: number;
  refusedUpgrades: number;
  errorSamples: string[];
  /** Connection failures by code (ECONNREFUSED during a restart is expected, EMFILE is not). */
  connectFailures: Record<string, number>;
  closes: number;
  /** Snapshots that came as deltas, and deltas on a base the agent did not have (each answered by a nack). */
  deltas: number;
  deltaBaseMismatches: number;
  /** Why open connections closed: "<code> <reason>" → count. */
  closeReasons: Record<string, number>;
  emfile: boolean;
  /** CPU time this process spent (user+system, ms), to tell simulation cost from server cost. */
  cpuMs: number;
  /** Upgrades answered 503 (the server shutting down): expected during the restart. */
  shutdownRefusals: number;
}

export type ClientToParent =
  | { type: 'ready'; worker: number }
  | { type: 'join-progress'; worker: number; done: number; failed: number }
  | { type: 'joined'; worker: number; joined: number[]; failed: number }
  | { type: 'acks'; worker: number; items: Array<[idx: number, revision: number, at: number]> }
  | { type: 'arrivals'; worker: number; items: Array<[idx: number, at: number]> }
  /** Agents whose upgrade was refused with 401/403: retrying will not help them. */
  | { type: 'refused'; worker: number; items: number[] }
  | { type: 'stats'; stats: ClientStats }
  | { type: 'fatal'; worker: number; message: string };

export function svcName(i: number): string {
  return `svc-${i}`;
}

/** What simulated agent `i` registers and calls, and where it claims to listen. */
export function agentShape(i: number, serviceCount: number): { name: string; service: string; upstreams: string[]; inboundPort: number } {
  const s = i % serviceCount;
  const upstreams = [...new Set([svcName((s + 1) % serviceCount), svcName((s + 3) % serviceCount)])];
  return { name: `sim-${i}`, service: svcName(s), upstreams, inboundPort: 15443 + (i % 40000) };
}
