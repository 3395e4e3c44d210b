// The listener data plane on its own: two-phase apply, listeners kept across snapshots, a bind
// failure undoing everything it had bound in that prepare.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { ListenerDataPlane } from '../../agent/dataplane/listeners.js';
import { freePort, makeSlice, testLog } from './fake-server.js';

const ROOT = '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n';
const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });

test('prepare binds, commit keeps, a later prepare+commit closes what disappeared', async () => {
  const [a, b] = [await freePort(), await freePort()];
  const dp = new ListenerDataPlane([
    { service: 'payments', localPort: a, bind: '127.0.0.1' },
    { service: 'orders', localPort: b, bind: '127.0.0.1' },
  ], testLog());
  try {
    const s1 = makeSlice(ROOT, ['payments', 'orders']);
    const c1 = await dp.prepare(s1, null);
    assert.equal(await accepts(a), true, 'bound during prepare, so a failure later can still be undone');
    c1.commit();
    assert.deepEqual(dp.listening(), { payments: `127.0.0.1:${a}`, orders: `127.0.0.1:${b}` });

    const c2 = await dp.prepare(makeSlice(ROOT, ['orders']), s1);
    assert.equal(await accepts(a), true, 'nothing closes before commit');
    c2.commit();
    assert.deepEqual(dp.listening(), { orders: `127.0.0.1:${b}` });
    const stillThere = new Promise<boolean>((resolve) => setTimeout(async () => resolve(await accepts(a)), 50));
    assert.equal(await stillThere, false);
  } finally {
    await dp.close();
  }
  assert.equal(await accepts(b), false, 'close() closes everything');
});

test('a port in use fails prepare with its port and service, and releases what that prepare bound', async () => {
  const [free, taken] = [await freePort(), await freePort()];
  const squatter = net.createServer();
  await new Promise<void>((r) => squatter.listen(taken, '127.0.0.1', () => r()));
  const dp = new ListenerDataPlane([
    { service: 'payments', localPort: free, bind: '127.0.0.1' },
    { service: 'orders', localPort: taken, bind: '127.0.0.1' },
  ], testLog());
  try {
    await assert.rejects(dp.prepare(makeSlice(ROOT, ['payments', 'orders']), null), new RegExp(`cannot listen on 127\\.0\\.0\\.1:${taken} for upstream "orders": the port is already in use`));
    assert.equal(await accepts(free), false, 'payments was bound in that prepare and released');
    assert.deepEqual(dp.listening(), {});
  } finally {
    await new Promise<void>((r) => squatter.close(() => r()));
    await dp.close();
  }
});

test('abort releases the new listeners; accepted connections go to the handler', async () => {
  const port = await freePort();
  const seen: string[] = [];
  const dp = new ListenerDataPlane([{ service: 'payments', localPort: port, bind: '127.0.0.1' }], testLog(), (service, socket) => {
    seen.push(service);
    socket.end('hi');
  });
  try {
    const c = await dp.prepare(makeSlice(ROOT, ['payments']), null);
    await c.abort();
    assert.equal(await accepts(port), false);
    (await dp.prepare(makeSlice(ROOT, ['payments']), null)).commit();
    const got = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      let text = '';
      s.on('data', (d) => (text += d));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    assert.equal(got, 'hi');
    assert.deepEqual(seen, ['payments']);
  } finally {
    await dp.close();
  }
});
