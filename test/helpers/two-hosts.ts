// The two-host mesh several data-plane tests start from: host B runs `web` (http) and `db` (tcp),
// host A runs `api` and calls both through its outbound ports.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { TestServer } from './server.js';
import { createJoinToken, startTestAgent, waitReady, type TestAgent } from './agent.js';
import { apply, describeResult, establishedTo, httpRequest, startHeaderEcho, startTcpEcho, tcpClient, waitEndpoints, type Cleanup, type HeaderEcho } from './traffic.js';

export interface TwoHosts {
  a: TestAgent;
  b: TestAgent;
  web: HeaderEcho;
}

export async function startTwoHosts(
  s: TestServer,
  bag: Cleanup,
  o: {
    prefix: string;
    A: string;
    B: string;
    webOut: number;
    dbOut: number;
    meshSpec: Record<string, unknown>;
    /** More host config for agent A or B (tracing, access log file…). */
    extra?: { a?: Record<string, unknown>; b?: Record<string, unknown> };
    /** More resources applied with the first ones (a Service's accessLog, an AccessPolicy…). */
    resources?: unknown[];
    /** Another `hostmesh` entry script for agent A or B (an older build). */
    cli?: { a?: string; b?: string };
  },
): Promise<TwoHosts> {
  const { A, B } = o;
  await apply(s, [
    { kind: 'Mesh', name: 'default', spec: o.meshSpec },
    { kind: 'Service', name: 'api', spec: { protocol: 'http', port: 18081 } },
    { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 18080 } },
    { kind: 'Service', name: 'db', spec: { protocol: 'tcp', port: 18090 } },
    ...(o.resources ?? []),
  ]);
  const web = await startHeaderEcho(B, 18080, 'web-b');
  bag.add(() => web.close());
  const db = await startTcpEcho(B, 18090);
  bag.add(() => db.close());
  const api = await startHeaderEcho(A, 18081, 'api-a');
  bag.add(() => api.close());
  const token = await createJoinToken(s);
  const b = await startTestAgent(s, {
    name: `${o.prefix}-b`,
    ip: B,
    token,
    services: [
      { name: 'web', port: 18080, host: B, protocol: 'http' },
      { name: 'db', port: 18090, host: B, protocol: 'tcp' },
    ],
    ...(o.extra?.b ? { extra: o.extra.b } : {}),
    ...(o.cli?.b ? { cli: o.cli.b } : {}),
  });
  bag.add(() => b.cleanup());
  const a = await startTestAgent(s, {
    name: `${o.prefix}-a`,
    ip: A,
    token,
    services: [{ name: 'api', port: 18081, host: A, protocol: 'http' }],
    upstreams: [
      { service: 'web', localPort: o.webOut, bind: A },
      { service: 'db', localPort: o.dbOut, bind: A },
    ],
    ...(o.extra?.a ? { extra: o.extra.a } : {}),
    ...(o.cli?.a ? { cli: o.cli.a } : {}),
  });
  bag.add(() => a.cleanup());
  await Promise.all([waitReady(a), waitReady(b)]);
  await waitEndpoints(a, 'web', 1);
  await waitEndpoints(a, 'db', 1);
  return { a, b, web };
}

/**
 * Between agents that do not both multiplex: 24 http requests over 6 keep-alive connections and 3 tcp
 * connections from A all go through, and B's inbound shows one mTLS connection per app connection
 * (at least one per tcp connection and more than one for http: not two shared sessions).
 */
export async function assertOneConnectionPerAppConnection(o: { A: string; B: string; webOut: number; dbOut: number; pathPrefix: string }): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
  const tcp = Array.from({ length: 3 }, () => tcpClient(o.A, o.dbOut));
  try {
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => httpRequest({ host: o.A, port: o.webOut, path: `${o.pathPrefix}/${i}`, timeoutMs: 5000, agent })));
    for (const r of results) assert.equal(r.status, 200, describeResult(r));
    for (const [i, c] of tcp.entries()) {
      assert.equal(await c.connected, true);
      c.socket.write(`conn ${i}\n`);
      assert.equal((await c.waitBytes(`conn ${i}\n`.length, 5000)).toString(), `conn ${i}\n`);
    }
    const n = establishedTo(o.B, 15443);
    assert.ok(n >= 3 + 2, `${n} established connections to ${o.B}:15443`);
  } finally {
    agent.destroy();
    for (const c of tcp) c.socket.destroy();
  }
}
