// One HTTP health probe: GET http://host:port/path on a fresh connection, within a deadline.
// Passes when the status equals `expectStatus`, or, without one, on any 2xx/3xx.
import http from 'node:http';
import { describeError, type ProbeResult } from './probe.js';

export interface HttpProbeTarget {
  host: string;
  port: number;
  /** Starts with '/'. */
  path: string;
  expectStatus: number | null;
  timeoutMs: number;
}

/** Only this much of a body is read; past it the connection is dropped (the status already decided). */
export const HTTP_BODY_CAP = 64 * 1024;

export function httpProbe(target: HttpProbeTarget): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    let result: ProbeResult | null = null;
    const finish = (r: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy(); // also closes the socket, so nothing outlives the probe
      resolve(r);
    };

    // `agent: false` and `connection: close`: no pooling, every probe sees a fresh connection, as a
    // new client would. The deadline covers connect, headers and the (capped) body.
    const req = http.request({
      host: target.host,
      port: target.port,
      path: target.path,
      method: 'GET',
      agent: false,
      headers: { connection: 'close', accept: '*/*', 'user-agent': 'hostmesh-health-check' },
    });
    const timer = setTimeout(() => finish({ ok: false, error: `timeout after ${target.timeoutMs}ms` }), target.timeoutMs);

    req.on('error', (err) => finish({ ok: false, error: describeError(err) }));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      const ok = target.expectStatus !== null ? status === target.expectStatus : status >= 200 && status < 400;
      const expected = target.expectStatus !== null ? String(target.expectStatus) : '2xx/3xx';
      result = ok ? { ok: true, error: null } : { ok: false, error: `status ${status}, expected ${expected}` };
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read >= HTTP_BODY_CAP) finish(result!);
      });
      res.on('end', () => finish(result!));
      // A reset mid-body: the status line already arrived and decides, as in Consul's HTTP check.
      res.on('error', () => finish(result!));
      res.on('close', () => finish(result!));
    });
    req.end();
  });
}
