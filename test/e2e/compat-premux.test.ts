// A rolling upgrade: agents built from the last commit before the multiplexer (PREMUX) and agents of
// this build carry traffic both ways, http and tcp, one mTLS connection per app connection. The old
// agent neither offers nor selects the multiplexer's ALPN; the new one must notice and fall back.
// Real server (this build), real agent processes; addresses 127.0.7.5–127.0.7.8 only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildOldAgent, type OldAgent } from '../helpers/old-agent.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { assertOneConnectionPerAppConnection, startTwoHosts, type TwoHosts } from '../helpers/two-hosts.js';
import { Cleanup } from '../helpers/traffic.js';

/** The parent of the commit that brought the multiplexer in (f3338ac); same dependencies as now. */
const PREMUX = '9000a8dae6bd92afb08a38527c0a6ab68c1e05b0';

let old: OldAgent | { unavailable: string } | null = null;
const oldAgent = (): OldAgent | { unavailable: string } => (old ??= buildOldAgent(PREMUX));

after(() => {
  if (old && 'cli' in old) old.cleanup();
});

for (const side of ['b', 'a'] as const) {
  const A = side === 'b' ? '127.0.7.5' : '127.0.7.7';
  const B = side === 'b' ? '127.0.7.6' : '127.0.7.8';
  describe(`mixed versions: the ${side === 'b' ? 'called' : 'calling'} agent is from before the multiplexer`, { timeout: 120_000 }, () => {
    const bag = new Cleanup();
    let s: TestServer;
    let skip: string | null = null;
    let hosts: TwoHosts;
    let oldCli = '';

    before(async () => {
      const built = oldAgent();
      if ('unavailable' in built) {
        skip = built.unavailable;
        return;
      }
      oldCli = built.cli;
      s = await startTestServer();
      bag.add(() => s.cleanup());
      hosts = await startTwoHosts(s, bag, {
        prefix: `compat-premux-${side}`,
        A,
        B,
        webOut: 19211,
        dbOut: 19212,
        meshSpec: { defaultAccess: 'allow', certTTL: '1h', disconnectGracePeriod: '2s' },
        cli: { [side]: built.cli },
      });
    }, { timeout: 90_000 });

    after(() => bag.run());

    test('http and tcp go through, one mTLS connection per app connection', { timeout: 30_000 }, async (t) => {
      if (skip !== null) return void t.skip(skip);
      assert.equal(hosts[side].proc.spawnargs[1], oldCli, `agent ${side.toUpperCase()} runs the old build`);
      assert.notEqual(hosts[side === 'a' ? 'b' : 'a'].proc.spawnargs[1], oldCli);
      await assertOneConnectionPerAppConnection({ A, B, webOut: 19211, dbOut: 19212, pathPrefix: '/compat' });
    });
  });
}
