// One TCP health probe: the port accepts a connection within the deadline; the connection is
// closed at once without sending anything.
import net from 'node:net';
import { describeError, type ProbeResult } from './probe.js';

export interface TcpProbeTarget {
  host: string;
  port: number;
  timeoutMs: number;
}

export function tcpProbe(target: TcpProbeTarget): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const socket = net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => finish({ ok: false, error: `timeout after ${target.timeoutMs}ms` }), target.timeoutMs);
    socket.once('connect', () => finish({ ok: true, error: null }));
    socket.on('error', (err) => finish({ ok: false, error: describeError(err) }));
  });
}
