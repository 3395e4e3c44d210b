// Keeps this host's certificates fresh: the host cert (for the control connection) and one cert per
// local service (for the data plane). Each is renewed at 2/3 of its life by sending a CSR over the
// control connection; the key is made here and never leaves the host. New certs are swapped in
// without restarting anything: readers call getServiceCert() and listen for 'renewed'.
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Backoff } from '../../shared/backoff.js';
import { generateKeyAndCsr, type KeyAndCsr } from '../../shared/csr.js';
import { formatSpiffeId } from '../../shared/identity.js';
import type { Logger } from '../../shared/log.js';
import type { CertMsg, CsrMsg, ErrorMsg } from '../../shared/protocol.js';
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import type { CertPair, StateStore } from '../state/store.js';
import { certBlocks, keyMatchesCert, parseCert } from './pem.js';
import type { TrustBundle } from './trust.js';

export const RENEW_AT_FRACTION = 2 / 3;
/** Failed requests back off per certificate, so a refusal (e.g. HM_ERR_NOT_REGISTERED) is no hot loop. */
export const CSR_RETRY = { baseMs: 2_000, capMs: 300_000, minMs: 1_000 } as const;
const ANSWER_TIMEOUT_MS = 60_000;

export type CertKind = 'host' | 'service';

export interface ServiceCert {
  certPem: string;
  keyPem: string;
  /** Leaf first, then the chain up to the root. */
  chainPem: string;
  notAfter: Date;
}

interface Held extends ServiceCert {
  notBefore: Date;
}

interface Slot {
  kind: CertKind;
  name: string;
  identity: string;
  held: Held | null;
  /** Set from the moment a request starts until its answer is stored or given up. */
  pending: { id: string; keyPem: string | null; timer: Timer | null } | null;
  retryAt: number | null;
  backoff: Backoff;
}

export interface CertManagerOptions {
  hostName: string;
  trustDomain: string;
  /** The host's current certificate, as joined or loaded from the state dir. */
  hostPair: CertPair;
  store: StateStore;
  trust: TrustBundle;
  log: Logger;
  metrics?: AgentMetrics;
  clock?: Clock;
  random?: () => number;
  answerTimeoutMs?: number;
  makeKeyAndCsr?: (identity: string) => Promise<KeyAndCsr>;
}

/** When a cert with this validity should be renewed: at 2/3 of its life. */
export function renewAt(notBefore: number, notAfter: number): number {
  return notBefore + Math.floor(RENEW_AT_FRACTION * (notAfter - notBefore));
}

export class CertManager extends EventEmitter {
  readonly #opts: CertManagerOptions;
  readonly #clock: Clock;
  readonly #slots = new Map<string, Slot>();
  #send: ((msg: CsrMsg) => boolean) | null = null;
  #timer: Timer | null = null;
  #stopped = false;

  constructor(opts: CertManagerOptions) {
    super();
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    const host = this.#slot('host', opts.hostName);
    host.held = held(opts.hostPair);
    this.#observe(host);
  }

  /** Add the local services and load their certs from the state dir; then request what is missing. */
  async setServices(names: readonly string[]): Promise<void> {
    const want = new Set(names);
    for (const [key, slot] of this.#slots) {
      if (slot.kind === 'service' && !want.has(slot.name)) {
        slot.pending?.timer?.cancel();
        this.#slots.delete(key);
        this.#opts.metrics?.certExpiry.remove({ identity: slot.identity });
      }
    }
    for (const name of want) {
      if (this.#slots.has(`service/${name}`)) continue;
      const slot = this.#slot('service', name);
      const pair = await this.#opts.store.readServicePair(name);
      if (pair) {
        try {
          slot.held = held(pair);
          this.#observe(slot);
        } catch (e) {
          this.#opts.log.warn({ service: name, err: (e as Error).message }, 'ignoring the stored service certificate');
        }
      }
    }
    this.requestDue();
  }

  getServiceCert(name: string): ServiceCert | null {
    return publicPart(this.#slots.get(`service/${name}`)?.held ?? null);
  }

  getHostCert(): ServiceCert | null {
    return publicPart(this.#slots.get(`host/${this.#opts.hostName}`)?.held ?? null);
  }

  /** {host, services} with each notAfter, for /config_dump. */
  status(): { host: { notAfter: string } | null; services: Record<string, { notAfter: string } | null> } {
    const services: Record<string, { notAfter: string } | null> = {};
    let host: { notAfter: string } | null = null;
    for (const s of this.#slots.values()) {
      const v = s.held ? { notAfter: s.held.notAfter.toISOString() } : null;
      if (s.kind === 'host') host = v;
      else services[s.name] = v;
    }
    return { host, services };
  }

  /** What is missing for the agent to serve: an empty list means every cert is present and unexpired. */
  problems(): string[] {
    const now = this.#clock.now();
    const out: string[] = [];
    for (const s of this.#slots.values()) {
      const what = s.kind === 'host' ? 'host certificate' : `certificate for service "${s.name}"`;
      if (!s.held) out.push(`no ${what} yet`);
      else if (s.held.notAfter.getTime() <= now) out.push(`${what} expired at ${s.held.notAfter.toISOString()}`);
    }
    return out;
  }

  /** The control connection is up: requests go out through `send` until disconnected(). */
  connected(send: (msg: CsrMsg) => boolean): void {
    this.#send = send;
    // A refusal may have been fixed on the server meanwhile; the connection's own backoff keeps a
    // flapping link from turning this into a loop.
    for (const s of this.#slots.values()) s.retryAt = null;
    this.requestDue();
  }

  disconnected(): void {
    this.#send = null;
    this.#timer?.cancel();
    this.#timer = null;
    // Answers to requests sent on the old socket will never come.
    for (const s of this.#slots.values()) {
      s.pending?.timer?.cancel();
      s.pending = null;
    }
  }

  stop(): void {
    this.#stopped = true;
    this.disconnected();
  }

  /** Send a CSR for every cert that is missing or past 2/3 of its life; then arm the timer for the next. */
  requestDue(): void {
    if (!this.#send || this.#stopped) return;
    const now = this.#clock.now();
    for (const slot of this.#slots.values()) {
      if (!slot.pending && dueAt(slot) <= now) void this.#request(slot);
    }
    this.#reschedule();
  }

  /** Returns false when the answer matches no request of ours. */
  async handleCert(msg: CertMsg): Promise<boolean> {
    const slot = this.#pendingFor(msg.id);
    if (!slot || !slot.pending?.keyPem) return false;
    const { keyPem } = slot.pending;
    slot.pending.timer?.cancel();
    let next: Held;
    try {
      if (msg.kind !== slot.kind || msg.name !== slot.name) throw new Error(`answer is for ${msg.kind} "${msg.name}"`);
      const leafPem = certBlocks(msg.certPem)[0];
      if (!leafPem) throw new Error('certPem holds no certificate');
      const leaf = parseCert(leafPem);
      if (!keyMatchesCert(keyPem, leaf.x509)) throw new Error('certificate is not for the key this agent made');
      if (!this.#opts.trust.issued(leaf.x509)) throw new Error('certificate is not signed by a mesh root this agent trusts');
      if (!leaf.uris.includes(slot.identity)) throw new Error(`certificate names ${leaf.uris.join(', ') || 'no URI'}, not ${slot.identity}`);
      const chainPem = certBlocks(msg.chainPem)[0] === leafPem ? msg.chainPem : leafPem + this.#opts.trust.pems.join('');
      next = { certPem: leafPem, keyPem, chainPem, notBefore: new Date(leaf.notBefore), notAfter: new Date(leaf.notAfter) };
      const pair = { keyPem, chainPem };
      if (slot.kind === 'host') await this.#opts.store.writeHostPair(pair);
      else await this.#opts.store.writeServicePair(slot.name, pair);
    } catch (e) {
      this.#fail(slot, `unusable certificate from the server: ${(e as Error).message}`);
      return true;
    }
    if (this.#slots.get(`${slot.kind}/${slot.name}`) !== slot) return true; // service removed meanwhile
    const first = slot.held === null;
    slot.held = next;
    slot.pending = null;
    slot.retryAt = null;
    slot.backoff.reset();
    this.#observe(slot);
    this.#opts.log.info({ identity: slot.identity, notAfter: next.notAfter.toISOString() }, first ? 'certificate issued' : 'certificate renewed');
    this.emit('renewed', slot.kind, slot.name);
    this.#reschedule();
    return true;
  }

  /** An `error` whose ref is one of our request ids; returns false otherwise. */
  handleError(msg: ErrorMsg): boolean {
    const slot = msg.ref === undefined ? undefined : this.#pendingFor(msg.ref);
    if (!slot) return false;
    this.#fail(slot, `${msg.code}: ${msg.message}`);
    return true;
  }

  async #request(slot: Slot): Promise<void> {
    const id = randomUUID();
    slot.pending = { id, keyPem: null, timer: null };
    let keys: KeyAndCsr;
    try {
      keys = await (this.#opts.makeKeyAndCsr ?? generateKeyAndCsr)(slot.identity);
    } catch (e) {
      this.#fail(slot, `cannot make a key and CSR: ${(e as Error).message}`);
      return;
    }
    if (slot.pending?.id !== id) return; // disconnected meanwhile; the next connect asks again
    slot.pending.keyPem = keys.keyPem;
    const msg: CsrMsg = { type: 'csr', id, kind: slot.kind, name: slot.name, csr: keys.csrPem };
    if (!this.#send || !this.#send(msg)) {
      slot.pending = null;
      return;
    }
    this.#opts.log.info({ identity: slot.identity, id, reason: slot.held ? 'renewal' : 'missing' }, 'requested a certificate');
    slot.pending.timer = this.#clock.setTimer(this.#opts.answerTimeoutMs ?? ANSWER_TIMEOUT_MS, () => {
      if (slot.pending?.id === id) this.#fail(slot, 'no answer from the server');
    });
  }

  #fail(slot: Slot, reason: string): void {
    slot.pending?.timer?.cancel();
    slot.pending = null;
    const delay = Math.max(CSR_RETRY.minMs, slot.backoff.next());
    slot.retryAt = this.#clock.now() + delay;
    this.#opts.log.warn({ identity: slot.identity, reason, retryInMs: delay }, 'certificate request failed; will retry');
    this.#reschedule();
  }

  #reschedule(): void {
    this.#timer?.cancel();
    this.#timer = null;
    if (!this.#send || this.#stopped) return;
    let earliest = Infinity;
    for (const s of this.#slots.values()) if (!s.pending) earliest = Math.min(earliest, dueAt(s));
    if (earliest === Infinity) return;
    this.#timer = this.#clock.setTimer(Math.max(0, earliest - this.#clock.now()), () => {
      this.#timer = null;
      this.requestDue();
    });
  }

  #pendingFor(id: string): Slot | undefined {
    for (const s of this.#slots.values()) if (s.pending?.id === id) return s;
    return undefined;
  }

  #slot(kind: CertKind, name: string): Slot {
    const slot: Slot = {
      kind,
      name,
      identity: formatSpiffeId({ trustDomain: this.#opts.trustDomain, kind, name }),
      held: null,
      pending: null,
      retryAt: null,
      backoff: new Backoff({ baseMs: CSR_RETRY.baseMs, capMs: CSR_RETRY.capMs, ...(this.#opts.random ? { random: this.#opts.random } : {}) }),
    };
    this.#slots.set(`${kind}/${name}`, slot);
    return slot;
  }

  #observe(slot: Slot): void {
    if (slot.held) this.#opts.metrics?.certExpiry.set({ identity: slot.identity }, Math.floor(slot.held.notAfter.getTime() / 1000));
  }
}

function dueAt(slot: Slot): number {
  if (slot.retryAt !== null) return slot.retryAt;
  return slot.held ? renewAt(slot.held.notBefore.getTime(), slot.held.notAfter.getTime()) : 0;
}

function held(pair: CertPair): Held {
  const leafPem = certBlocks(pair.chainPem)[0];
  if (!leafPem) throw new Error('no certificate in the chain');
  const leaf = parseCert(leafPem);
  return { certPem: leafPem, keyPem: pair.keyPem, chainPem: pair.chainPem, notBefore: new Date(leaf.notBefore), notAfter: new Date(leaf.notAfter) };
}

function publicPart(h: Held | null): ServiceCert | null {
  return h ? { certPem: h.certPem, keyPem: h.keyPem, chainPem: h.chainPem, notAfter: h.notAfter } : null;
}
