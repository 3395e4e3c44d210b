// A request that may have been taken is not sent twice. When a reused keep-alive connection dies
// before any byte of an answer, an idempotent request goes again on a fresh connection, but never a
// POST (RFC 9110 §9.2.2): whoever had it may have acted on it. Both places: the inbound agent's
// connection to its instance, and the calling agent's connection to the instance's agent (that agent
// dies holding the request; another instance must not get it). Real server, real agent processes;
// addresses 127.0.10.1–127.0.10.5 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createJoinToken, startTestAgent, waitFor, waitReady, type TestAgent } from '../helpers/agent.js';
import { Cleanup, apply, describeResult, httpRequest, waitEndpoints } from '../helpers/traffic.js';

const A = '127.0.10.1'; // calls web
const B = '127.0.10.2'; // runs web
const WEB_OUT = 19301;

/** A server with the mesh open by default and one http service, `web` on port 18080. */
async function startWebMesh(bag: Cleanup): Promise<TestServer> {
  const s = await startTestServer();
  bag.add(() => s.cleanup());
  await apply(s, [
    { kind: 'Mesh', name: 'default', spec: { defaultAccess: 'allow', certTTL: '1h' } },
    { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 18080 } },
  ]);
  return s;
}

/** `app` as the instance of web on `ip`, closed (connections and all) at cleanup. */
async function listenApp(app: http.Server, ip: string, bag: Cleanup): Promise<void> {
  await new Promise<void>((resolve) => app.listen(18080, ip, resolve));
  bag.add(
    () =>
      new Promise<void>((resolve) => {
        app.closeAllConnections();
        app.close(() => resolve());
      }),
  );
}

describe('data plane: a request the instance may have taken is not sent twice', { timeout: 60_000 }, () => {
  const bag = new Cleanup();
  let s: TestServer;
  /** Requests the instance received, by "METHOD path". */
  const seen = new Map<string, number>();

  before(async () => {
    s = await startWebMesh(bag);
    // /die/…: the instance takes the request and then drops the connection without an answer.
    const app = http.createServer((req, res) => {
      const key = `${req.method} ${req.url}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      if (req.url?.startsWith('/die/') && seen.get(key) === 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    app.keepAliveTimeout = 30_000;
    await listenApp(app, B, bag);
    const token = await createJoinToken(s);
    const b = await startTestAgent(s, { name: 'nodouble-b', ip: B, token, services: [{ name: 'web', port: 18080, host: B, protocol: 'http' }] });
    bag.add(() => b.cleanup());
    const a = await startTestAgent(s, { name: 'nodouble-a', ip: A, token, upstreams: [{ service: 'web', localPort: WEB_OUT, bind: A }] });
    bag.add(() => a.cleanup());
    await Promise.all([waitReady(a), waitReady(b)]);
    await waitEndpoints(a, 'web', 1);
  }, { timeout: 40_000 });

  after(() => bag.run());

  /** One request after a GET on the same path prefix, so B's connection to the instance is a reused one. */
  const afterWarmUp = async (method: string, path: string): Promise<number> => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const warm = await httpRequest({ host: A, port: WEB_OUT, path: '/warm', timeoutMs: 5000, agent });
      assert.equal(warm.status, 200, describeResult(warm));
      const r = await httpRequest({ host: A, port: WEB_OUT, path, method, timeoutMs: 5000, agent });
      return r.status;
    } finally {
      agent.destroy();
    }
  };

  test('a POST on a reused connection that the instance drops is answered 503, and reached the instance once', { timeout: 15_000 }, async () => {
    const status = await afterWarmUp('POST', '/die/post');
    assert.equal(seen.get('POST /die/post'), 1, 'the instance saw the POST once');
    assert.equal(status, 503);
  });

  test('a GET in the same place is sent again on a fresh connection and answered', { timeout: 15_000 }, async () => {
    const status = await afterWarmUp('GET', '/die/get');
    assert.equal(status, 200);
    assert.equal(seen.get('GET /die/get'), 2, 'sent again once');
  });
});

describe('data plane: a POST whose instance agent dies holding it does not go to another instance', { timeout: 60_000 }, () => {
  const A2 = '127.0.10.3'; // calls web
  const HOSTS = ['127.0.10.4', '127.0.10.5']; // each runs an instance of web
  const OUT = 19302;
  const bag = new Cleanup();
  let s: TestServer;
  let caller: TestAgent;
  const agents: TestAgent[] = [];
  /** POSTs each instance received. */
  const posts = [0, 0];

  before(async () => {
    s = await startWebMesh(bag);
    const token = await createJoinToken(s);
    for (const [i, ip] of HOSTS.entries()) {
      // A POST is taken and never answered: the agent in front of it dies first.
      const app = http.createServer((req, res) => {
        if (req.method === 'POST') {
          posts[i]!++;
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
      await listenApp(app, ip, bag);
      const agent = await startTestAgent(s, { name: `nodouble-web-${i}`, ip, token, services: [{ name: 'web', port: 18080, host: ip, protocol: 'http' }] });
      bag.add(() => agent.cleanup());
      agents.push(agent);
    }
    caller = await startTestAgent(s, { name: 'nodouble-caller', ip: A2, token, upstreams: [{ service: 'web', localPort: OUT, bind: A2 }] });
    bag.add(() => caller.cleanup());
    await Promise.all([caller, ...agents].map((x) => waitReady(x)));
    await waitEndpoints(caller, 'web', 2);
  }, { timeout: 40_000 });

  after(() => bag.run());

  test('the POST is answered with an error and no other instance sees it', { timeout: 20_000 }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      // Round robin over both: each of the caller's connections to their agents has served a request.
      for (let i = 0; i < 4; i++) {
        const r = await httpRequest({ host: A2, port: OUT, path: `/warm/${i}`, timeoutMs: 5000, agent });
        assert.equal(r.status, 200, describeResult(r));
      }
      const pending = httpRequest({ host: A2, port: OUT, path: '/hold', method: 'POST', timeoutMs: 10_000, agent });
      const holder = await waitFor('an instance to take the POST', () => (posts[0]! + posts[1]! > 0 ? true : null), 5000);
      assert.ok(holder);
      const which = posts[0]! > 0 ? 0 : 1;
      await agents[which]!.kill9();
      const r = await pending;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.deepEqual(posts, which === 0 ? [1, 0] : [0, 1], 'the other instance never got the POST');
      assert.ok(r.status >= 500 && r.status <= 504, `an error answer, not a hang: ${describeResult(r)}`);
    } finally {
      agent.destroy();
    }
  });
});
