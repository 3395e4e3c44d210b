// Graceful stop: on SIGTERM an agent tells the server its instances are leaving, takes no new
// connections, lets requests in flight finish, and exits 0; what is still open at drainTimeout is
// cut. Real server, real agents; addresses 127.0.8.x only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTwoHosts } from '../helpers/two-hosts.js';
import { waitFor, type TestAgent } from '../helpers/agent.js';
import { Cleanup, agentTails, describeResult, httpRequest, tcpClient, type HeaderEcho } from '../helpers/traffic.js';

const A = '127.0.8.1'; // calls web (http) and db (tcp)
const B = '127.0.8.2'; // runs web and db
const WEB_OUT = 19801;
const DB_OUT = 19802;

const refused = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, host, () => (s.destroy(), resolve(false)));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });

describe('graceful stop on SIGTERM', { timeout: 90_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  let a: TestAgent;
  let b: TestAgent;
  let web: HeaderEcho;

  before(async () => {
    s = await startTestServer();
    bag.add(() => s.cleanup());
    ({ a, b, web } = await startTwoHosts(s, bag, {
      prefix: 'drain',
      A,
      B,
      webOut: WEB_OUT,
      dbOut: DB_OUT,
      meshSpec: { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '30s' },
      extra: { a: { drainTimeout: '1500ms' }, b: { drainTimeout: '6s' } },
    }));
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('the callee’s agent answers the request in flight, refuses new connections, marks its instances down, exits 0', { timeout: 20_000 }, async () => {
    web.setDelay(1500);
    const inFlight = httpRequest({ host: A, port: WEB_OUT, path: '/slow', timeoutMs: 8000 });
    await waitFor('the request at the service', () => web.inFlight === 1, 3000, 10);
    const t0 = Date.now();
    b.proc.kill('SIGTERM');
    await waitFor('inbound listener closed', () => refused(B, 15443), 2000, 25);
    const inst = await waitFor('web on drain-b reported unhealthy', async () => {
      const items = (await s.api('GET', '/v1/instances?service=web')).body.items as Array<{ host: string; healthy: boolean }>;
      const mine = items.find((i) => i.host === 'drain-b');
      return mine && !mine.healthy ? mine : null;
    }, 2000, 25);
    assert.equal(inst.healthy, false);
    const r = await inFlight;
    assert.equal(r.status, 200, `the request in flight is answered: ${describeResult(r)}${agentTails([a, b])}`);
    assert.equal(r.json?.url, '/slow');
    const code = await b.exited();
    assert.equal(code, 0, agentTails([b]));
    const took = Date.now() - t0;
    assert.ok(took >= 1000 && took < 6000, `exited ${took} ms after SIGTERM: after the request, before the drain timeout${agentTails([b], 3000)}`);
    assert.match(b.output(), /drained: no connection left open/);
    web.setDelay(0);
  });

  test('the caller’s agent closes idle keep-alive connections at once and cuts a tcp connection at drainTimeout', { timeout: 20_000 }, async () => {
    // db's agent (drain-b) is gone; start it again so the tcp connection has somewhere to go.
    b.start();
    await waitFor('drain-b back and web healthy', async () => {
      const items = (await s.api('GET', '/v1/instances?service=db')).body.items as Array<{ host: string; healthy: boolean }>;
      return items.some((i) => i.host === 'drain-b' && i.healthy);
    }, 15_000, 100);
    await waitFor('db endpoint at drain-a', async () => {
      const eps = ((await a.configDump()).slice?.upstreams?.db?.endpoints ?? []) as Array<{ healthy: boolean }>;
      return eps.some((e) => e.healthy);
    }, 10_000, 100);
    const tcp = tcpClient(A, DB_OUT);
    assert.equal(await tcp.connected, true);
    tcp.socket.write('ping\n');
    await tcp.waitBytes(5, 5000);
    // An idle keep-alive http connection to A's outbound port.
    const idle = net.connect(WEB_OUT, A);
    idle.resume(); // read the answer, so the peer's FIN surfaces as 'close'
    await new Promise((r) => idle.once('connect', r));
    idle.write(`GET /keepalive HTTP/1.1\r\nhost: web\r\n\r\n`);
    await waitFor('keep-alive answer', () => idle.bytesRead > 0, 5000, 10);
    const idleClosed = new Promise<number>((resolve) => idle.once('close', () => resolve(Date.now())));
    // The client is half-open capable: the cut shows as the end of what the mesh sends it.
    const tcpClosed = tcp.ended.then(() => Date.now());

    const t0 = Date.now();
    a.proc.kill('SIGTERM');
    const idleAt = await Promise.race([idleClosed, new Promise<number>((r) => setTimeout(() => r(Infinity), 5000))]);
    assert.ok(idleAt - t0 < 1000, `an idle keep-alive connection is closed without waiting for the timeout (after ${idleAt - t0} ms)${agentTails([a], 3000)}`);
    const cut = (await tcpClosed) - t0;
    assert.ok(cut >= 1200 && cut < 4000, `the open tcp connection is cut at drainTimeout (1.5 s), after ${cut} ms`);
    assert.equal(await a.exited(), 0, agentTails([a]));
    assert.match(a.output(), /drain timeout: closing the connections still open/);
    tcp.socket.destroy();
    idle.destroy();
  });
});
