// pipeBoth (agent/proxy/outbound-tcp.ts) joins two sockets: bytes both ways, and when either side
// closes, both are closed once. Real loopback sockets.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { pipeBoth } from '../../agent/proxy/outbound-tcp.js';
import { socketPair } from '../helpers/sockets.js';

test('bytes cross both ways, and a reset on one side closes the other, once', async (t) => {
  const [appNear, app] = await socketPair(t);
  const [farNear, far] = await socketPair(t);
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
  const [callerNear] = await socketPair(t);
  const [localNear, local] = await socketPair(t);
  callerNear.destroy();
  await once(callerNear, 'close');
  let done = 0;
  pipeBoth(callerNear, localNear, () => done++);
  assert.equal(localNear.destroyed, true, 'the local connection is not left open');
  assert.equal(done, 1);
  await once(local, 'end'); // the local instance sees the connection end
});
