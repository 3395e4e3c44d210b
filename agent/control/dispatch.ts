// What the agent does with each frame from the server. Every frame is validated; one that is not
// JSON, not a known type, or not of its type's shape is logged and answered with an `error` (ref =
// its type) and changes nothing. A snapshot whose envelope is readable but whose slice is not gets
// a nack instead, so the server records the rejection against that revision.
import type { Logger } from '../../shared/log.js';
import { decodeServerMessage } from '../../shared/protocol.js';
import type { CertManager } from '../certs/manager.js';
import type { ConfigApplier, SnapshotInput } from '../config/apply.js';
import type { OutgoingMessage } from './connection.js';

export interface DispatchDeps {
  send(msg: OutgoingMessage): boolean;
  applier: ConfigApplier;
  certs: CertManager;
  log: Logger;
}

export function createFrameHandler(deps: DispatchDeps): (data: Buffer | string) => void {
  const { send, applier, certs, log } = deps;
  const applyAndAnswer = (snap: SnapshotInput): void => {
    void applier.apply(snap).then(
      (answer) => send(answer),
      (e: Error) => log.error({ err: e.message }, 'applying a snapshot failed unexpectedly'),
    );
  };

  return (data) => {
    const d = decodeServerMessage(data);
    if (!d.ok) {
      if (d.type === 'snapshot') {
        const envelope = snapshotEnvelope(data);
        if (envelope) return applyAndAnswer(envelope);
      }
      log.warn({ code: d.code, error: d.error }, 'invalid message from the server; ignored');
      send({ type: 'error', code: d.code, message: d.error, ...(d.type === undefined ? {} : { ref: d.type }) });
      return;
    }
    const msg = d.msg;
    switch (msg.type) {
      case 'snapshot':
        return applyAndAnswer(msg);
      case 'delta':
        void applier.applyDelta(msg).then(
          (answer) => send(answer),
          (e: Error) => log.error({ err: e.message }, 'applying a delta failed unexpectedly'),
        );
        return;
      case 'cert':
        void certs.handleCert(msg).then(
          (matched) => {
            if (!matched) log.warn({ id: msg.id, kind: msg.kind, name: msg.name }, 'certificate for no pending request; ignored');
          },
          (e: Error) => log.error({ err: e.message }, 'handling a certificate failed unexpectedly'),
        );
        return;
      case 'error':
        if (!certs.handleError(msg)) log.warn({ code: msg.code, ref: msg.ref, error: msg.message }, 'the server reported an error');
        return;
      case 'ping':
        return; // liveness only: receiving it is what counts
    }
  };
}

/** revision and hash of a snapshot frame whose slice failed validation, or null if even those are bad. */
function snapshotEnvelope(data: Buffer | string): SnapshotInput | null {
  try {
    const v = JSON.parse(typeof data === 'string' ? data : data.toString('utf8')) as Partial<SnapshotInput>;
    if (Number.isInteger(v.revision) && (v.revision as number) >= 0 && typeof v.hash === 'string' && v.hash.length <= 128) {
      return { revision: v.revision as number, hash: v.hash, slice: v.slice };
    }
  } catch {
    /* not JSON: answered as a bad message */
  }
  return null;
}
