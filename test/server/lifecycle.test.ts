// Server process lifecycle: first start, restart, crash safety and startup errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, startTestServer, tempDir } from '../helpers/server.js';

test('first start makes CA, keys 0600 and a hashed admin token; later starts reuse them', async () => {
  const s = await startTestServer();
  try {
    const mode = (f: string) => fs.statSync(path.join(s.dataDir, f)).mode & 0o777;
    assert.equal(mode('ca/root.key.pem'), 0o600);
    assert.equal(mode('tls/server.key.pem'), 0o600);
    assert.equal(mode('admin.token'), 0o600);
    assert.equal(mode('.') & 0o077, 0);
    assert.match(s.output(), /Admin token \(shown once/);
    assert.ok(s.output().includes(s.token));
    const db = fs.readFileSync(path.join(s.dataDir, 'hostmesh.db'));
    assert.ok(!db.includes(Buffer.from(s.token.split('_')[2]!)), 'the token secret is not stored in the clear');
    const fp1 = (await s.api('GET', '/v1/ca/root')).body.fingerprint;

    assert.equal(await s.stop(), 0, 'SIGTERM is a clean exit');
    await s.restart();
    assert.doesNotMatch(s.output().split('SIGTERM').pop()!, /Admin token/);
    assert.equal((await s.api('GET', '/v1/ca/root')).body.fingerprint, fp1);
    assert.equal((await s.api('GET', '/v1/status')).status, 200, 'the same admin token still works');
  } finally {
    await s.cleanup();
  }
});

test('kill -9 during writes: every acknowledged write is there after restart', async () => {
  const s = await startTestServer();
  try {
    const acked: string[] = [];
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const name = `w${w}-${i}`;
        try {
          const r = await s.api('PUT', `/v1/resources/Service/${name}`, { kind: 'Service', name, spec: { protocol: 'tcp', port: 1 + (i % 60000) } });
          if (r.status === 201) acked.push(name);
        } catch {
          return; // the server died mid-request: that write was never acknowledged
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await new Promise((r) => setTimeout(r, 700));
    await s.kill9();
    stop = true;
    await Promise.all(writers);
    assert.ok(acked.length > 10, `only ${acked.length} writes before the kill`);
    await s.restart();
    const names = new Set((await s.api('GET', '/v1/resources/Service')).body.items.map((x: { name: string }) => x.name));
    const lost = acked.filter((n) => !names.has(n));
    assert.deepEqual(lost, [], `lost ${lost.length} of ${acked.length} acknowledged writes`);
    const audit = await s.api('GET', '/v1/audit?limit=1000&kind=Service');
    assert.ok(audit.body.items.length >= Math.min(acked.length, 1000));
  } finally {
    await s.cleanup();
  }
});

test('startup problems are one line and a non-zero exit', async () => {
  const s = await startTestServer();
  const dirs: string[] = [];
  try {
    // Port already taken (by the first server).
    const d1 = tempDir();
    dirs.push(d1);
    const taken = await runCli(['server', '--data-dir', d1, '--listen', `127.0.0.1:${s.port}`]);
    assert.notEqual(taken.code, 0);
    assert.match(taken.stderr.trim(), /already in use/);
    assert.equal(taken.stderr.trim().split('\n').length, 1, taken.stderr);

    // Corrupt database.
    const d2 = tempDir();
    dirs.push(d2);
    fs.writeFileSync(path.join(d2, 'hostmesh.db'), 'this is not a sqlite database, not at all'.repeat(100));
    const corrupt = await runCli(['server', '--data-dir', d2, '--listen', '127.0.0.1:0']);
    assert.notEqual(corrupt.code, 0);
    assert.match(corrupt.stderr.trim(), /hostmesh\.db/);
    assert.equal(corrupt.stderr.trim().split('\n').length, 1, corrupt.stderr);

    // A data dir that is a file.
    const d3 = tempDir();
    dirs.push(d3);
    const file = path.join(d3, 'file');
    fs.writeFileSync(file, 'x');
    const notDir = await runCli(['server', '--data-dir', file, '--listen', '127.0.0.1:0']);
    assert.notEqual(notDir.code, 0);
    assert.match(notDir.stderr.trim(), /data dir/);
    assert.equal(notDir.stderr.trim().split('\n').length, 1, notDir.stderr);

    // A trust domain other than the one the data dir was made with.
    await s.stop();
    const td = await runCli(['server', '--data-dir', s.dataDir, '--listen', '127.0.0.1:0', '--trust-domain', 'other.example']);
    assert.notEqual(td.code, 0);
    assert.match(td.stderr.trim(), /trust domain/);
    assert.equal(td.stderr.trim().split('\n').length, 1, td.stderr);

    const listen = await runCli(['server', '--data-dir', d1, '--listen', 'nonsense']);
    assert.notEqual(listen.code, 0);
    assert.match(listen.stderr.trim(), /HOST:PORT/);
  } finally {
    await s.cleanup();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  }
});
