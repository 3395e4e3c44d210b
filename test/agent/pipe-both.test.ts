// pipeBoth (agent/proxy/outbound-tcp.ts) joins two sockets: bytes both ways, and when either side
// closes, both are closed once. Real loopback sockets.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { pipeBoth } from '../../agent/proxy/outbound-tcp.js';

async function pair(t: TestContext): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const a = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [b] = (await accepted) as [net.Socket];
  await once(a, 'connect');
  server.close();
  t.after(() => {
    a.destroy();
    b.destroy();
  });
  return [a, b];
}

test('bytes cross both ways, and a reset on one side closes the other, once', async (t) => {
  const [appNear, app] = await pair(t);
  const [farNear, far] = await pair(t);
  let done = 0;
  pipeBoth(appNear, farNear, () => done++);
  app.write('ping');
  const [got] = (await once(far, 'data')) as [Buffer];
  assert.equal(got.toString(), 'ping');
  far.write('pong');
  const [back] = (await once(app, 'data')) as [Buffer];
  assert.equal(back.toString(), 'pong');
  app.resetAndDestroy();
  await once(farNear, 'close');
  assert.equal(done, 1);
});

test('a side that closed before the join (the caller gave up during the connect) closes the other at once', async (t) => {
  const [callerNear] = await pair(t);
  const [localNear, local] = await pair(t);
  callerNear.destroy();
  await once(callerNear, 'close');
  let done = 0;
  pipeBoth(callerNear, localNear, () => done++);
  assert.equal(localNear.destroyed, true, 'the local connection is not left open');
  assert.equal(done, 1);
  await once(local, 'end'); // the local instance sees the connection end
});
