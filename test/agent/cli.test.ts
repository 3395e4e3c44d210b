// `hostmesh agent`: config from YAML with flags on top, one-line errors with exit code 2 for a bad
// config, exit 1 for a refused join, exit 0 after SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadHostConfig } from '../../agent/config/load.js';
import { freePort, getText, startFakeServer, tempDir, until, type FakeServer } from './fake-server.js';

const CHILD = new URL('./cli-child.js', import.meta.url).pathname;
let dir: string;
let fake: FakeServer;
before(async () => {
  dir = tempDir();
  fake = await startFakeServer();
});
after(async () => {
  await fake.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, text);
  return f;
}

const FP = `sha256:${'0'.repeat(64)}`;

test('flags override the file; a bare host:port server is taken as https', () => {
  const file = write('a.yaml', `server: https://10.0.0.1:7443\ncaFingerprint: ${FP}\nname: from-file\nservices:\n  - { name: web, port: 8080 }\n`);
  const cfg = loadHostConfig({ config: file, name: 'from-flag', server: '127.0.0.1:9443', admin: '127.0.0.1:0' });
  assert.equal(cfg.name, 'from-flag');
  assert.equal(cfg.server, 'https://127.0.0.1:9443');
  assert.equal(cfg.services[0]!.name, 'web');
  assert.deepEqual(cfg.admin, { host: '127.0.0.1', port: 0 });
});

test('flags alone are enough when they say everything', () => {
  const cfg = loadHostConfig({ server: 'https://127.0.0.1:7443', caFingerprint: FP, name: 'solo', stateDir: '/tmp/x' });
  assert.equal(cfg.name, 'solo');
  assert.equal(cfg.token, null);
});

test('errors name the file (or "flags") and the field', () => {
  assert.throws(() => loadHostConfig({ config: write('b.yaml', `server: http://x\ncaFingerprint: ${FP}\n`) }), /b\.yaml: server: /);
  assert.throws(() => loadHostConfig({ config: write('c.yaml', 'server: [\n') }), /c\.yaml: \(yaml\): /);
  assert.throws(() => loadHostConfig({ config: write('d.yaml', '- 1\n') }), /d\.yaml: \(root\): must be a mapping/);
  assert.throws(() => loadHostConfig({ config: path.join(dir, 'missing.yaml') }), /missing\.yaml: \(file\): cannot read: no such file/);
  assert.throws(() => loadHostConfig({ server: 'https://h:1' }), /: flags: caFingerprint: is required$/);
});

function run(args: string[]): { done: Promise<{ code: number | null; stdout: string; stderr: string }>; kill(sig: NodeJS.Signals): void; out(): string } {
  const p = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOSTMESH_LOG_LEVEL: 'info' } });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return {
    done: new Promise((resolve) => p.once('exit', (code) => resolve({ code, stdout, stderr }))),
    kill: (sig) => p.kill(sig),
    out: () => stdout + stderr,
  };
}

test('an invalid config file: one line on stderr, exit 2, nothing started', async () => {
  const stateDir = path.join(dir, 'never');
  const file = write('bad.yaml', `server: https://127.0.0.1:1\ncaFingerprint: nope\nstateDir: ${stateDir}\n`);
  const r = await run(['agent', '--config', file]).done;
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^hostmesh agent: .*bad\.yaml: caFingerprint: /);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  assert.equal(fs.existsSync(stateDir), false);
});

test('a refused join token: exit 1 with what to do', async () => {
  const file = write('refused.yaml', `server: ${fake.url}\ncaFingerprint: ${fake.fingerprint}\nname: refused\nstateDir: ${path.join(dir, 'refused')}\nadmin: 127.0.0.1:0\n`);
  const r = await run(['agent', '--config', file, '--token', 'wrong']).done;
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: the server refused the join token .*hostmesh token create/m);
  assert.doesNotMatch(r.stdout + r.stderr, /wrong/, 'the token is never logged');
});

test('joins with flags given after `agent` (even where the program has global --server/--token), then exits 0 on SIGTERM', async () => {
  const admin = await freePort();
  const stateDir = path.join(dir, 'sigterm');
  const file = write('ok.yaml', `caFingerprint: ${fake.fingerprint}\nservices:\n  - { name: web, port: 8080 }\n`);
  const child = run(['agent', '--config', file, '--server', fake.url, '--token', 'good-token', '--name', 'sigterm', '--state-dir', stateDir, '--admin', `127.0.0.1:${admin}`, '--address', '127.0.0.1', '--inbound', `127.0.0.1:${await freePort()}`]);
  await until(async () => {
    try {
      return (await getText(`http://127.0.0.1:${admin}/readyz`)).status > 0 && fake.connected();
    } catch {
      return false;
    }
  }, 15_000, 'agent up and connected');
  assert.ok(fs.existsSync(path.join(stateDir, 'host.crt.pem')));
  child.kill('SIGTERM');
  const r = await child.done;
  assert.equal(r.code, 0, child.out());
  assert.doesNotMatch(r.stdout + r.stderr, /good-token/);
});
