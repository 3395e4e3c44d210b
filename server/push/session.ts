// One connected agent: its WebSocket, what it told us in hello, and what it has applied.
// Message handling lives here; deciding what to push lives in the hub.
import type { WebSocket } from 'ws';
import type { Logger } from '../../shared/log.js';
import { isHmError } from '../../shared/errors.js';
import {
  decodeAgentMessage,
  PROTOCOL_VERSION,
  SUPPORTED_PROTOCOLS,
  type AgentMessage,
  type CsrMsg,
  type HelloMsg,
  type ServerMessage,
  type StatsMsg,
  type Slice,
} from '../../shared/protocol.js';

export interface SessionHandlers {
  hello(s: Session, msg: HelloMsg): void;
  health(s: Session, changes: Array<{ service: string; healthy: boolean }>): void;
  csr(s: Session, msg: CsrMsg): Promise<void>;
  stats(s: Session, msg: StatsMsg): void;
  applied(s: Session): void;
  nacked(s: Session): void;
  closed(s: Session): void;
}

export class Session {
  greeted = false;
  /** Its hello is in the registry: from then on it is pushed its slice. */
  registered = false;
  services = new Set<string>();
  upstreams: string[] = [];
  /** Hash and revision of the last snapshot sent, and of the last one the agent acked. */
  sentHash: string | null = null;
  sentRevision: number | null = null;
  /** performance.now() when the last snapshot was sent, until it is answered. */
  sentAt: number | null = null;
  /** The slice last sent, and whether as a delta (a nacked delta is followed by the whole snapshot). */
  sentSlice: Slice | null = null;
  sentDelta = false;
  /** A newer slice waits for the answer to the one in flight: at most one push per agent on the wire. */
  pending = false;
  /** The protocol version from hello: deltas only from DELTA_PROTOCOL on. */
  protocol = 1;
  appliedHash: string | null = null;
  /** The slice with `appliedHash`, when this server sent it: the base of the next delta. */
  appliedSlice: Slice | null = null;
  appliedRevision: number | null = null;
  lastNack: { revision: number; error: string; at: string } | null | undefined = undefined;
  lastSeenAt = new Date().toISOString();
  dirty = true;
  alive = true;
  private closedOnce = false;

  constructor(
    readonly host: string,
    readonly ws: WebSocket,
    private readonly handlers: SessionHandlers,
    private readonly log: Logger,
  ) {
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on('pong', () => {
      this.alive = true;
      this.touch();
    });
    ws.on('close', () => this.onClose());
    ws.on('error', (err) => this.log.warn({ host, err: err.message }, 'agent socket error'));
  }

  send(msg: ServerMessage): void {
    this.sendText(JSON.stringify(msg));
  }

  /** A message already serialized (snapshots are serialized once and shared across sessions). */
  sendText(text: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(text);
  }

  /** Answer a message we could not take, and say why; the connection stays up. */
  refuse(code: string, message: string, ref?: string): void {
    this.log.warn({ host: this.host, code, ref }, message);
    this.send({ type: 'error', code, message, ...(ref ? { ref } : {}) });
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason.slice(0, 120));
  }

  private touch(): void {
    this.lastSeenAt = new Date().toISOString();
    this.dirty = true;
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    this.touch();
    if (isBinary) return this.refuse('HM_ERR_BAD_MESSAGE', 'binary frames are not part of the protocol; send JSON text');
    const decoded = decodeAgentMessage(data);
    if (!decoded.ok) return this.refuse(decoded.code, decoded.error, decoded.type);
    try {
      this.dispatch(decoded.msg);
    } catch (e) {
      // A handler bug or a registry error must not take the hub down with it.
      const code = isHmError(e) ? e.code : 'HM_ERR_INTERNAL';
      this.refuse(code, isHmError(e) ? e.message : 'internal error handling the message', decoded.msg.type);
      if (!isHmError(e)) this.log.error({ host: this.host, err: e }, 'message handler failed');
    }
  }

  private dispatch(msg: AgentMessage): void {
    if (!this.greeted && msg.type !== 'hello' && msg.type !== 'error') {
      this.refuse('HM_ERR_BAD_MESSAGE', `send hello before ${msg.type}`, msg.type);
      return;
    }
    switch (msg.type) {
      case 'hello':
        if (msg.host !== this.host) {
          this.refuse('HM_ERR_IDENTITY', `hello names host "${msg.host}" but the certificate is for "${this.host}"`, 'hello');
          this.close(1008, 'host name does not match certificate');
          return;
        }
        if (!SUPPORTED_PROTOCOLS.includes(msg.protocol)) {
          this.refuse('HM_ERR_BAD_MESSAGE', `protocol ${msg.protocol} is not supported by this server (it speaks ${SUPPORTED_PROTOCOLS.join(', ')}; current ${PROTOCOL_VERSION})`, 'hello');
          this.close(1008, 'unsupported protocol');
          return;
        }
        this.greeted = true;
        this.protocol = msg.protocol;
        this.appliedHash = msg.appliedHash;
        this.appliedRevision = msg.appliedRevision;
        this.handlers.hello(this, msg);
        return;
      case 'ack':
        if (msg.hash === this.sentHash) this.appliedSlice = this.sentSlice;
        else if (msg.hash !== this.appliedHash) this.appliedSlice = null;
        this.appliedHash = msg.hash;
        this.appliedRevision = msg.revision;
        this.lastNack = null;
        this.dirty = true;
        this.handlers.applied(this);
        return;
      case 'nack':
        this.lastNack = { revision: msg.revision, error: msg.error, at: new Date().toISOString() };
        this.dirty = true;
        this.log.warn({ host: this.host, revision: msg.revision, error: msg.error }, 'agent refused a snapshot (nack); it keeps its previous config');
        this.handlers.nacked(this);
        return;
      case 'health':
        this.handlers.health(this, msg.changes);
        return;
      case 'csr':
        void this.handlers.csr(this, msg).catch((e: unknown) => {
          this.refuse(isHmError(e) ? e.code : 'HM_ERR_INTERNAL', isHmError(e) ? e.message : 'could not sign the request', msg.id);
        });
        return;
      case 'error':
        // Logged only: answering an error with an error could loop between the two sides.
        this.log.warn({ host: this.host, code: msg.code, ref: msg.ref }, `agent could not take a message: ${msg.message}`);
        return;
      case 'stats':
        this.handlers.stats(this, msg);
        return;
    }
  }

  private onClose(): void {
    if (this.closedOnce) return;
    this.closedOnce = true;
    this.handlers.closed(this);
  }
}
