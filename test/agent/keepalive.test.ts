// A server that stops answering (no frames, no pongs) is declared dead and replaced by a new
// connection, instead of the agent waiting on a half-open socket forever.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { startAgent } from '../../agent/main.js';
import { agentConfig, startFakeServer, tempDir } from './fake-server.js';
import { testDeps } from './harness.js';

test('no pong within the dead interval: the agent drops the socket and reconnects', async () => {
  const fake = await startFakeServer();
  const dir = tempDir();
  const agent = await startAgent(agentConfig(fake, path.join(dir, 'state')), testDeps({ timing: { pingIntervalMs: 50, deadAfterMs: 200, stableAfterMs: 10_000 } }));
  try {
    await fake.waitFor((m) => m.type === 'hello', 10_000, true);
    // Pings keep a live connection alive well past the dead interval.
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(fake.sockets, 1);
    fake.freeze();
    const t0 = Date.now();
    await fake.waitFor((m) => m.type === 'hello', 5_000);
    assert.equal(fake.sockets, 2);
    assert.ok(Date.now() - t0 >= 150, 'not before the dead interval');
  } finally {
    await agent.stop();
    await fake.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
