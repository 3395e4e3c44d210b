// What the golden-metric (hostmesh stat) tests share: two hosts whose agents send summaries every
// second, a CLI environment for the server, a known mix of requests, and the wait for the server
// to have all of them from both agents.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { StatsView } from '../../shared/golden.js';
import { waitFor, type TestAgent } from './agent.js';
import { tempDir, type TestServer } from './server.js';
import { startTwoHosts } from './two-hosts.js';
import { agentTails, describeResult, httpRequest, type Cleanup, type HeaderEcho } from './traffic.js';

export interface StatsHosts {
  a: TestAgent;
  b: TestAgent;
  web: HeaderEcho;
  /** HOSTMESH_* variables for runCli against `s`. */
  env: Record<string, string>;
}

/** Host A (api) calls web on host B through `webOut`; `metrics` is added to both agents' config. */
export async function startStatsHosts(
  s: TestServer,
  bag: Cleanup,
  o: { prefix: string; A: string; B: string; webOut: number; dbOut: number; metrics: Record<string, unknown> },
): Promise<StatsHosts> {
  const extra = { metrics: { summaryInterval: '1s', ...o.metrics } };
  const { a, b, web } = await startTwoHosts(s, bag, {
    prefix: o.prefix,
    A: o.A,
    B: o.B,
    webOut: o.webOut,
    dbOut: o.dbOut,
    meshSpec: { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '2s' },
    extra: { a: extra, b: extra },
  });
  const dir = tempDir();
  bag.add(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'ca.pem'), s.caPem);
  return { a, b, web, env: { HOSTMESH_ADDR: s.url, HOSTMESH_TOKEN: s.token, HOSTMESH_CA_FILE: path.join(dir, 'ca.pem') } };
}

/** `ok` requests answered 200, then `failed` answered 500 by web, through A's outbound port. */
export async function sendMix(h: StatsHosts, host: string, port: number, ok: number, failed: number): Promise<void> {
  for (let i = 0; i < ok; i++) {
    const r = await httpRequest({ host, port, path: `/ok/${i}`, timeoutMs: 5000 });
    assert.equal(r.status, 200, `${describeResult(r)}${agentTails([h.a, h.b])}`);
  }
  h.web.setStatus(500);
  for (let i = 0; i < failed; i++) assert.equal((await httpRequest({ host, port, path: '/fail', timeoutMs: 5000 })).status, 500);
  h.web.setStatus(null);
}

/** GET /v1/stats once web's agent (inbound) and the caller's (edge to web) have both reported `total` requests. */
export function waitForSummaries(s: TestServer, total: number): Promise<StatsView> {
  return waitFor(`summaries of all ${total} requests from both agents`, async () => {
    const v = (await s.api('GET', '/v1/stats?window=1m')).body as StatsView;
    const w = v.services.find((x) => x.service === 'web');
    const e = v.edges.find((x) => x.destination === 'web');
    return w?.measuredAt === 'inbound' && w.requests === total && e?.requests === total ? v : null;
  }, 15_000, 250);
}
