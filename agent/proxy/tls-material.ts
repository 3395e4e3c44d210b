// TLS contexts built from the agent's certificates and the mesh roots. Rebuilt whenever a
// certificate is renewed or the trust bundle changes; connections already open keep the context
// they were made with, new ones get the new one, so renewal drops nothing.
import tls from 'node:tls';
import { constants } from 'node:crypto';
import type { CertManager } from '../certs/manager.js';
import type { TrustBundle } from '../certs/trust.js';

// Resumption would let a client skip the certificate and identity checks after a CA or policy
// change, so neither tickets nor a session cache are offered.
export const SECURE_OPTIONS = constants.SSL_OP_NO_TICKET;
export const MIN_VERSION: tls.SecureVersion = 'TLSv1.2';

export class TlsMaterial {
  private serverContexts = new Map<string, tls.SecureContext>();
  private clientContext: tls.SecureContext | null = null;
  private clientIdentity: string | null = null;
  private generation = 0;

  constructor(
    private readonly certs: CertManager,
    private readonly trust: TrustBundle,
    /** The identity this host presents when it calls other services. */
    private readonly callerService: string | null,
  ) {
    certs.on('renewed', () => this.invalidate());
  }

  /** Bumped on every rebuild: connection pools use it to stop reusing connections made with old material. */
  get version(): number {
    return this.generation;
  }

  invalidate(): void {
    this.serverContexts = new Map();
    this.clientContext = null;
    this.generation++;
  }

  /** For the inbound listener: the context of the service the client named in SNI, or null. */
  serverContext(service: string): tls.SecureContext | null {
    let ctx = this.serverContexts.get(service);
    if (ctx) return ctx;
    const c = this.certs.getServiceCert(service);
    if (!c) return null;
    ctx = tls.createSecureContext({ key: c.keyPem, cert: c.chainPem, ca: [...this.trust.pems], minVersion: MIN_VERSION, secureOptions: SECURE_OPTIONS });
    this.serverContexts.set(service, ctx);
    return ctx;
  }

  /** For outbound connections: this host's calling identity and the mesh roots. */
  client(): tls.SecureContext {
    if (this.clientContext) return this.clientContext;
    const svc = this.callerService ? this.certs.getServiceCert(this.callerService) : null;
    const pair = svc ?? this.certs.getHostCert();
    if (!pair) throw new Error('no certificate to call other services with yet');
    this.clientIdentity = svc ? `service/${this.callerService}` : 'host';
    this.clientContext = tls.createSecureContext({ key: pair.keyPem, cert: pair.chainPem, ca: [...this.trust.pems], minVersion: MIN_VERSION });
    return this.clientContext;
  }

  get callerIdentity(): string | null {
    return this.clientIdentity;
  }

  roots(): string[] {
    return [...this.trust.pems];
  }
}
