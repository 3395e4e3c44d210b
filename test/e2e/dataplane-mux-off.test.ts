// Agents that do not multiplex (host config `multiplex: false`, or an agent from before the
// multiplexer, which does not offer or select its ALPN) still carry traffic with agents that do:
// one mTLS connection per app connection, as before. Real server, real agent processes; addresses
// 127.0.7.1–127.0.7.4 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { assertOneConnectionPerAppConnection, startTwoHosts } from '../helpers/two-hosts.js';
import { Cleanup } from '../helpers/traffic.js';


for (const side of ['b', 'a'] as const) {
  const A = side === 'b' ? '127.0.7.1' : '127.0.7.3';
  const B = side === 'b' ? '127.0.7.2' : '127.0.7.4';
  describe(`data plane with multiplex: false on ${side === 'b' ? 'the called' : 'the calling'} agent`, { timeout: 90_000 }, () => {
    const bag = new Cleanup();
    let s: TestServer;

    before(async () => {
      s = await startTestServer();
      bag.add(() => s.cleanup());
      await startTwoHosts(s, bag, {
        prefix: `dp-nomux-${side}`,
        A,
        B,
        webOut: 19201,
        dbOut: 19202,
        meshSpec: { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '2s' },
        extra: { [side]: { multiplex: false } },
      });
    }, { timeout: 40_000 });

    after(() => bag.run());

    test('http and tcp go through, one mTLS connection per app connection', { timeout: 30_000 }, () =>
      assertOneConnectionPerAppConnection({ A, B, webOut: 19201, dbOut: 19202, pathPrefix: '/nomux' }));
  });
}
