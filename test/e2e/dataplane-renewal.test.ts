// Certificate renewal under continuous load drops no request, and a long-lived tcp connection
// opened before the renewal keeps working after it. Mesh certTTL 1m: leaves are issued with
// notBefore = now − 60 s (clock skew) and notAfter = now + 60 s, and agents renew at 2/3 of that
// life, i.e. ~20 s after issue (the 2/3-of-TTL figure, ~40 s, would hold without the backdating).
// Addresses 127.0.3.10–127.0.3.19 only.
//
// SLOW: this file takes ~45–50 s (it waits for two renewals of both services' certificates).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTwoHosts } from '../helpers/two-hosts.js';
import type { TestAgent } from '../helpers/agent.js';
import {
  Cleanup,
  agentTails,
  failureSummary,
  isFailure,
  sleep,
  startLoad,
  tcpClient,
} from '../helpers/traffic.js';

const A = '127.0.3.11'; // registers api; calls web and db
const B = '127.0.3.12'; // web (http), db (tcp)
const WEB_OUT = 19211;
const DB_OUT = 19212;
/** Renewals of each cert to see before stopping; bounded by MAX_LOAD_MS. */
const RENEWALS = 2;
const MAX_LOAD_MS = 55_000;

describe('data plane: certificate renewal under load', { timeout: 110_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    // certTTL before any agent joins, so every certificate they ever hold is short-lived.
    ({ a, b } = await startTwoHosts(s, bag, { prefix: 'dp-renew', A, B, webOut: WEB_OUT, dbOut: DB_OUT, meshSpec: { defaultAccess: 'allow', certTTL: '1m', disconnectGracePeriod: '2s' } }));
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('renewing both sides’ certificates under continuous load drops no request (~45 s)', { timeout: 90_000 }, async (t) => {
    const notAfter = async (agent: TestAgent, service: string): Promise<string | null> =>
      ((await agent.configDump())?.certs?.services?.[service]?.notAfter as string | undefined) ?? null;
    const first = { api: await notAfter(a, 'api'), web: await notAfter(b, 'web') };
    assert.ok(first.api && first.web, `both service certs present: ${JSON.stringify(first)}`);
    const ttl = Date.parse(first.web!) - Date.now();
    assert.ok(ttl < 70_000, `certTTL 1m is in force (web cert expires in ${(ttl / 1000).toFixed(0)} s)`);

    // A tcp connection opened before any renewal, used again after.
    const tcp = tcpClient(A, DB_OUT);
    const load = startLoad({ host: A, port: WEB_OUT, concurrency: 4, path: '/renew', timeoutMs: 5000, pauseMs: 2 });
    let stopped = false;
    try {
      assert.equal(await tcp.connected, true);
      tcp.socket.write('before\n');
      await tcp.waitBytes(7, 5000);

      const seen = { api: new Set([first.api!]), web: new Set([first.web!]) };
      const t0 = Date.now();
      while (Date.now() - t0 < MAX_LOAD_MS && (seen.api.size <= RENEWALS || seen.web.size <= RENEWALS)) {
        await sleep(1000);
        const [x, y] = [await notAfter(a, 'api'), await notAfter(b, 'web')];
        if (x) seen.api.add(x);
        if (y) seen.web.add(y);
        // Fail early, not after 55 s, if requests are already failing.
        const bad = load.samples.filter(isFailure);
        if (bad.length > 0) break;
      }
      await sleep(2000); // a little load after the last renewal
      const samples = await load.stop();
      stopped = true;
      t.diagnostic(`${samples.length} requests over ${((Date.now() - t0) / 1000).toFixed(0)} s; api cert renewed ${seen.api.size - 1}×, web cert ${seen.web.size - 1}×`);
      assert.equal(samples.filter(isFailure).length, 0, `no request failed across the renewals: ${failureSummary(samples)}${agentTails([a, b])}`);
      assert.ok(seen.api.size >= 2, `the caller's (api) certificate was renewed: ${[...seen.api].join(', ')}`);
      assert.ok(seen.web.size >= 2, `the callee's (web) certificate was renewed: ${[...seen.web].join(', ')}`);
      assert.ok(samples.length >= 500, `load was continuous: ${samples.length} requests`);

      // The tcp connection from before the renewals still carries bytes both ways.
      tcp.socket.write('after\n');
      const got = await tcp.waitBytes(13, 5000);
      assert.equal(got.toString(), 'before\nafter\n', 'the long-lived tcp connection survived the renewals');
    } finally {
      if (!stopped) await load.stop();
      tcp.socket.destroy();
    }
  });
});
