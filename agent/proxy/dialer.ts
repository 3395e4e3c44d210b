// Opens mTLS connections to other agents' inbound listeners: SNI names the service, the client
// presents this host's calling identity, and the server must prove it holds a certificate for
// exactly that service (spiffe://<td>/service/<name>), not merely any certificate of the mesh.
import tls from 'node:tls';
import type { Endpoint } from '../../shared/protocol.js';
import { serviceServerName } from '../../shared/identity.js';
import { peerIdentity } from './peer-identity.js';
import type { TlsMaterial } from './tls-material.js';

export type DialFailure = 'connect-failure' | 'tls-failure' | 'timeout';

export class DialError extends Error {
  override name = 'DialError';
  constructor(
    readonly kind: DialFailure,
    message: string,
  ) {
    super(message);
  }
}

export class Dialer {
  constructor(
    private readonly material: TlsMaterial,
    private readonly trustDomain: () => string,
  ) {}

  /** `alpn`: protocols to offer (the tcp multiplexer); the caller reads socket.alpnProtocol. */
  dial(service: string, ep: Endpoint, timeoutMs: number, alpn?: string[]): Promise<tls.TLSSocket> {
    const td = this.trustDomain();
    const expected = `spiffe://${td}/service/${service}`;
    return new Promise((resolve, reject) => {
      let settled = false;
      const socket = tls.connect({
        host: ep.address,
        port: ep.port,
        servername: serviceServerName(service, td),
        secureContext: this.material.client(),
        // Hostname checks do not apply inside the mesh: identity is the SPIFFE ID, checked here.
        checkServerIdentity: (_host, cert) => {
          const uri = (cert.subjectaltname ?? '').split(', ').filter((p) => p.startsWith('URI:'));
          if (uri.length !== 1 || uri[0] !== `URI:${expected}`) return new Error(`peer is not ${expected}`);
          return undefined;
        },
        allowHalfOpen: true,
        ...(alpn ? { ALPNProtocols: alpn } : {}),
      } as tls.ConnectionOptions);
      socket.setNoDelay(true);
      const timer = setTimeout(() => fail(new DialError('timeout', `connect to ${ep.address}:${ep.port} timed out after ${timeoutMs} ms`)), timeoutMs);
      const fail = (e: DialError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(e);
      };
      socket.once('secureConnect', () => {
        if (settled) return;
        const id = peerIdentity(socket.getPeerX509Certificate(), td, 'server');
        if (typeof id === 'string') return fail(new DialError('tls-failure', `peer certificate refused: ${id}`));
        settled = true;
        clearTimeout(timer);
        socket.removeListener('error', onError);
        resolve(socket);
      });
      const onError = (e: NodeJS.ErrnoException): void => {
        const tlsish = e.code?.startsWith('ERR_TLS') || e.code?.startsWith('ERR_SSL') || /certificate|handshake|alert/i.test(e.message);
        fail(new DialError(tlsish ? 'tls-failure' : 'connect-failure', `${ep.address}:${ep.port}: ${e.code ?? e.message}`));
      };
      socket.once('error', onError);
    });
  }
}
