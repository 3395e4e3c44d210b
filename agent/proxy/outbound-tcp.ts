// Outbound L4: an app's TCP connection to an upstream's local port is carried, byte for byte, to a
// healthy instance's agent: as a stream of the multiplexed mTLS session to that agent
// (mux/), or over an mTLS connection of its own to an agent without the multiplexer. A connect
// failure is retried on another instance (no byte has left yet). Each direction ends on its own
// (half-close), with backpressure (stream windows, or pipe() one-to-one).
import type net from 'node:net';
import type { Logger } from '../../shared/log.js';
import type { Endpoint } from '../../shared/protocol.js';
import { coarseClock } from '../lb/index.js';
import type { AccessLog } from '../observability/access-log.js';
import { DialError } from './dialer.js';
import type { ProxyMetrics } from './metrics.js';
import type { MuxPool, TcpCarrier } from './mux/pool.js';
import type { UpstreamState } from './upstream.js';

const MAX_CONNECT_ATTEMPTS = 3;

export function handleOutboundTcp(
  up: UpstreamState,
  client: net.Socket,
  pool: MuxPool,
  metrics: ProxyMetrics,
  log: Logger,
  accessLog: AccessLog | null = null,
  source = '',
): void {
  client.setNoDelay(true);
  client.pause();
  const started = performance.now();
  const logIt = accessLog !== null && up.settings.accessLog;
  const refusal = up.breaker.tryAcquireConnection();
  if (refusal) {
    metrics.circuitOpen(up.service, refusal);
    if (logIt) accessLog.write(tcpLine('outbound', source, up.service, '', started, 0, 0, 'CIRCUIT_OPEN'));
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
  let to = '';
  const fail = (e: Error): void => {
    log.debug({ service: up.service, err: e.message }, 'no upstream connection for a tcp client');
    if (logIt) accessLog.write(tcpLine('outbound', source, up.service, '', started, 0, 0, e instanceof DialError ? 'CONNECT_FAILURE' : 'NO_HEALTHY_ENDPOINTS'));
    client.destroy();
  };
  /** Carry the connection; `replay` is what it sent on a stream another agent refused at open. */
  const attach = (got: Connected, reroutes: number, replay?: { sent: Buffer[]; ended: boolean }): void => {
    const { carrier } = got;
    if (client.destroyed) {
      if ('socket' in carrier) carrier.socket.destroy();
      else carrier.session.release();
      return;
    }
    // The connection is the endpoint's load (least-request counts it) until it closes or goes elsewhere.
    up.balancer.onStart(got.ep.host);
    const uncount = (): void => up.balancer.onRelease(got.ep.host);
    client.once('close', uncount);
    to = got.to;
    if ('socket' in carrier) {
      for (const b of replay?.sent ?? []) carrier.socket.write(b);
      if (replay?.ended) carrier.socket.end();
      pipeBoth(client, carrier.socket, noop);
      return;
    }
    carrier.session.openStream(
      client,
      (sent, ended) => {
        // Refused at open (the agent is draining, or full): nothing reached the service, so the
        // connection goes to another instance with what it sent, as a failed connect would.
        client.off('close', uncount);
        uncount();
        if (reroutes >= MAX_CONNECT_ATTEMPTS - 1) {
          client.destroy();
          return;
        }
        metrics.retried(up.service);
        void connect(up, pool, metrics, 0, got.ep).then((next) => attach(next, reroutes + 1, { sent, ended }), fail);
      },
      replay,
    );
  };
  void connect(up, pool, metrics, 0, null).then((got) => {
    if (!client.destroyed) {
      metrics.connGroup('outbound', up.service, 'tcp')?.track(client);
      if (logIt) client.once('close', () => accessLog.write(tcpLine('outbound', source, up.service, to, started, client.bytesRead, client.bytesWritten, null)));
    }
    attach(got, 0);
  }, fail);
}

interface Connected {
  carrier: TcpCarrier;
  /** address:port of the agent it goes to (access log). */
  to: string;
  ep: Endpoint;
}

const noop = (): void => undefined;

/** The access log line of one tcp connection, written when it closes (or fails to open). */
export function tcpLine(
  direction: 'inbound' | 'outbound',
  source: string,
  destination: string,
  upstream: string,
  started: number,
  received: number,
  sent: number,
  error: string | null,
): Record<string, unknown> {
  return {
    direction,
    protocol: 'tcp',
    source,
    destination,
    duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
    bytes_received: received,
    bytes_sent: sent,
    upstream_host: upstream,
    ...(error ? { error } : {}),
  };
}

async function connect(up: UpstreamState, pool: MuxPool, metrics: ProxyMetrics, attempt: number, avoid: Endpoint | null): Promise<Connected> {
  const eligible = up.current();
  let ep = up.balancer.pick(eligible);
  // One re-pick to avoid the endpoint that just failed, when there is another.
  if (ep && ep === avoid && eligible.length > 1) ep = up.balancer.pick(eligible);
  if (!ep) throw new Error(`no healthy endpoint for ${up.service}`);
  const started = performance.now();
  up.balancer.onStart(ep.host);
  try {
    const carrier = await pool.carrier(up.service, ep, up.settings.connectTimeoutMs);
    up.balancer.onFinish(ep.host, performance.now() - started, true);
    up.outlier.onSuccess(ep.host);
    return { carrier, to: `${ep.address}:${ep.port}`, ep };
  } catch (e) {
    up.balancer.onFinish(ep.host, performance.now() - started, false);
    if (up.outlier.onFailure(ep.host, coarseClock.now())) metrics.ejected(up.service);
    if (e instanceof DialError && attempt + 1 < MAX_CONNECT_ATTEMPTS) {
      metrics.retried(up.service);
      return connect(up, pool, metrics, attempt + 1, ep);
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
  // One side may have gone while the other was being connected (a caller that gave up during a
  // slow connect): its 'close' has been and gone, so nothing below would ever close the other.
  if (a.destroyed || b.destroyed) return finish();
  a.pipe(b);
  b.pipe(a);
  a.on('error', finish);
  b.on('error', finish);
  a.on('close', finish);
  b.on('close', finish);
  a.resume();
  b.resume();
}
