// Outbound L4: an app's TCP connection to an upstream's local port is carried, byte for byte, over
// one mTLS connection to a healthy instance's agent. A connect failure is retried on another
// instance (no byte has left yet); after that the two sockets are piped both ways, each direction
// ending on its own (half-close), with backpressure from pipe().
import type net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from '../../shared/log.js';
import type { Endpoint } from '../../shared/protocol.js';
import { coarseClock } from '../lb/index.js';
import { DialError, type Dialer } from './dialer.js';
import type { ProxyMetrics } from './metrics.js';
import type { UpstreamState } from './upstream.js';

const MAX_CONNECT_ATTEMPTS = 3;

export function handleOutboundTcp(up: UpstreamState, client: net.Socket, dialer: Dialer, metrics: ProxyMetrics, log: Logger): void {
  client.setNoDelay(true);
  client.pause();
  const refusal = up.breaker.tryAcquireConnection();
  if (refusal) {
    metrics.circuitOpen(up.service, refusal);
    client.destroy();
    return;
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    up.breaker.releaseConnection();
  };
  client.once('close', release);
  client.on('error', () => undefined);
  void connect(up, dialer, metrics, 0, null).then(
    (remote) => {
      if (client.destroyed) {
        remote.destroy();
        return;
      }
      metrics.tcpOpened('outbound', up.service);
      pipeBoth(client, remote, () => metrics.tcpClosed('outbound', up.service, client.bytesRead, client.bytesWritten));
    },
    (e: Error) => {
      log.debug({ service: up.service, err: e.message }, 'no upstream connection for a tcp client');
      client.destroy();
    },
  );
}

async function connect(up: UpstreamState, dialer: Dialer, metrics: ProxyMetrics, attempt: number, avoid: Endpoint | null): Promise<tls.TLSSocket> {
  const eligible = up.current();
  let ep = up.balancer.pick(eligible);
  // One re-pick to avoid the endpoint that just failed, when there is another.
  if (ep && ep === avoid && eligible.length > 1) ep = up.balancer.pick(eligible);
  if (!ep) throw new Error(`no healthy endpoint for ${up.service}`);
  const started = performance.now();
  up.balancer.onStart(ep.host);
  try {
    const s = await dialer.dial(up.service, ep, up.settings.connectTimeoutMs);
    up.balancer.onFinish(ep.host, performance.now() - started, true);
    up.outlier.onSuccess(ep.host);
    return s;
  } catch (e) {
    up.balancer.onFinish(ep.host, performance.now() - started, false);
    if (up.outlier.onFailure(ep.host, coarseClock.now())) metrics.ejected(up.service);
    if (e instanceof DialError && attempt + 1 < MAX_CONNECT_ATTEMPTS) {
      metrics.retried(up.service);
      return connect(up, dialer, metrics, attempt + 1, ep);
    }
    throw e;
  }
}

/**
 * Pipe a↔b. Each direction ends independently (an `end` from one side is passed on as a FIN to
 * the other, and the other direction keeps flowing) and an error or close on either side tears
 * both down. `done` runs once.
 */
export function pipeBoth(a: net.Socket, b: net.Socket, done: () => void): void {
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    a.destroy();
    b.destroy();
    done();
  };
  a.pipe(b);
  b.pipe(a);
  a.on('error', finish);
  b.on('error', finish);
  a.on('close', finish);
  b.on('close', finish);
  a.resume();
  b.resume();
}
