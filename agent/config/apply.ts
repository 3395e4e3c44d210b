// Applying a snapshot: check it, prepare all of it, then switch over at once. Anything that fails
// before the switch leaves the previous config in force and becomes a nack; a bad config is never
// half-applied. The applied snapshot is persisted before the switch so a restart resumes from it.
import { EventEmitter } from 'node:events';
import { hashOf } from '../../shared/canonical.js';
import type { Logger } from '../../shared/log.js';
import { sliceValidator, type AckMsg, type DeltaMsg, type NackMsg, type Slice } from '../../shared/protocol.js';
import { applySlicePatch } from '../../shared/slice-patch.js';
import { TrustBundle } from '../certs/trust.js';
import type { DataPlane } from '../dataplane/listeners.js';
import type { AgentMetrics } from '../metrics/agent-metrics.js';
import type { PersistedSnapshot, StateStore } from '../state/store.js';

export type AppliedConfig = PersistedSnapshot;

export interface SnapshotInput {
  revision: number;
  hash: string;
  slice: unknown;
}

const MAX_NACK_ERROR = 2000;

export interface ApplierDeps {
  dataPlane: DataPlane;
  store: StateStore;
  trust: TrustBundle;
  metrics: AgentMetrics;
  log: Logger;
}

/** Emits 'applied' (current: AppliedConfig, previous: AppliedConfig | null) after each switch. */
export class ConfigApplier extends EventEmitter {
  #current: AppliedConfig | null = null;
  // Snapshots are applied one at a time, in arrival order; prepare() is async.
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ApplierDeps) {
    super();
  }

  get current(): AppliedConfig | null {
    return this.#current;
  }

  /** Put the snapshot persisted by a previous run back in force, without a server. */
  restore(saved: PersistedSnapshot): Promise<AckMsg | NackMsg> {
    return this.apply(saved, 'disk');
  }

  apply(msg: SnapshotInput, from: 'server' | 'disk' = 'server'): Promise<AckMsg | NackMsg> {
    const run = this.#queue.then(() => this.#apply(msg, from));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** A patch on the applied slice: rebuilt here, then checked and applied like a whole snapshot. */
  applyDelta(msg: DeltaMsg): Promise<AckMsg | NackMsg> {
    const run = this.#queue.then(() => {
      const base = this.#current;
      if (!base || base.hash !== msg.baseHash) {
        // The server answers this nack with the whole snapshot.
        const error = `delta is based on ${msg.baseHash} but the applied config is ${base?.hash ?? 'none'}`;
        this.deps.log.info({ revision: msg.revision, error }, 'delta not applicable; asking for the whole snapshot');
        return { type: 'nack', revision: msg.revision, hash: msg.hash, error } satisfies NackMsg;
      }
      let slice: Slice;
      try {
        slice = applySlicePatch(base.slice, msg.patch);
      } catch (e) {
        return this.#apply({ revision: msg.revision, hash: msg.hash, slice: null }, 'server', `invalid delta: ${(e as Error).message}`);
      }
      return this.#apply({ revision: msg.revision, hash: msg.hash, slice }, 'server');
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #apply(msg: SnapshotInput, from: 'server' | 'disk', refused?: string): Promise<AckMsg | NackMsg> {
    const { revision, hash } = msg;
    const log = this.deps.log.child({ revision, hash });
    const nack = (error: string): NackMsg => {
      this.deps.metrics.snapshotsRejected.inc();
      log.warn({ error, from }, 'snapshot rejected; keeping the previous config');
      return { type: 'nack', revision, hash, error: error.slice(0, MAX_NACK_ERROR) };
    };
    const prev = this.#current;
    if (refused !== undefined) return nack(refused);

    if (prev && prev.hash === hash && hashOf(msg.slice) === hash) {
      // Same content under a newer revision (another host's change bumped it): nothing to do
      // but remember the revision, so the next hello reports it.
      if (prev.revision !== revision) {
        this.#current = { ...prev, revision };
        this.deps.metrics.configRevision.set(revision);
        await this.deps.store.writeSnapshot(this.#current).catch((e: Error) => log.warn({ err: e.message }, 'cannot persist the snapshot revision'));
      }
      return { type: 'ack', revision, hash };
    }

    const computed = hashOf(msg.slice);
    if (computed !== hash) return nack(`hash mismatch: the slice hashes to ${computed}, not ${hash}`);
    const violations = sliceValidator.violations(msg.slice, 'slice');
    if (violations.length > 0) return nack(`invalid slice: ${violations[0]!.field}: ${violations[0]!.message}`);
    const slice = msg.slice as Slice;
    let trust: TrustBundle;
    try {
      trust = new TrustBundle(slice.caBundle);
      if (trust.pems.length === 0) throw new Error('no certificate in it');
    } catch (e) {
      return nack(`invalid slice: slice.caBundle: ${(e as Error).message}`);
    }

    let change;
    try {
      change = await this.deps.dataPlane.prepare(slice, prev?.slice ?? null);
    } catch (e) {
      return nack((e as Error).message);
    }
    const next: AppliedConfig = { revision, hash, slice };
    try {
      if (from === 'server') {
        await this.deps.store.writeSnapshot(next);
        if (this.deps.trust.pems.join('') !== trust.pems.join('')) await this.deps.store.writeCaBundle(trust.pems);
      }
    } catch (e) {
      await change.abort();
      return nack(`cannot persist the snapshot: ${(e as Error).message}`);
    }
    change.commit();
    this.deps.trust.replace(trust.pems);
    this.#current = next;
    this.deps.metrics.configRevision.set(revision);
    log.info({ from, upstreams: Object.keys(slice.upstreams).length, services: Object.keys(slice.services).length }, 'config applied');
    this.emit('applied', next, prev);
    return { type: 'ack', revision, hash };
  }
}
