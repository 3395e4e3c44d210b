// The installer for real: the agent is built (bundle and single executable), a server serves it,
// and the exact command `hostmesh token create` prints installs it into a temporary root. The
// installed executable then runs with no Node.js on its PATH and joins. Agents here use 127.0.4.x.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, REPO_ROOT, runCli, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { startEchoService, waitFor } from '../helpers/agent.js';
import { buildAgentOnce, exec, expiredHostCert, listTree, sh, type Built } from '../helpers/install.js';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';

const IP = '127.0.4.2';

describe('installer', () => {
  let built: Built;
  let s: TestServer;
  let root: string;
  let installCommand: string;
  let agent: ChildProcess | null = null;
  let agentOut = '';
  let echo: Awaited<ReturnType<typeof startEchoService>>;
  const ports = { inbound: 0, admin: 0, web: 0 };
  const scratch: string[] = [];
  const bin = (): string => path.join(root, 'usr/local/bin/hostmesh-agent');
  const config = (): string => path.join(root, 'etc/hostmesh/agent.yaml');

  /** The printed command, as the operator would paste it, with sudo dropped (the tests run as root) and flags added. */
  const install = (args: string, cmd = installCommand): Promise<{ code: number | null; stdout: string; stderr: string }> =>
    sh(`${cmd.replace('| sudo sh -s --', '| sh -s --')} ${args}`);

  before(async () => {
    built = await buildAgentOnce();
    // The server serves the agent from here (and reads it per request, so a test can tamper with it).
    process.env['HOSTMESH_AGENT_DIR'] = built.dir;
    s = await startTestServer();
    const r = await s.api('POST', '/v1/apply', { documents: [{ kind: 'Service', name: 'web', spec: { protocol: 'http', port: 8080 } }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    ports.inbound = await freePort(IP);
    ports.admin = await freePort(IP);
    // A local service listens on 127.0.0.1 (the installer's --service has no host part); a free port, not an agent.
    ports.web = await freePort('127.0.0.1');
    echo = await startEchoService('127.0.0.1', ports.web, 'web');
    root = tempDir('hostmesh-root-');
  });

  after(async () => {
    agent?.kill('SIGKILL');
    await echo?.close();
    await s?.cleanup();
    built?.cleanup();
    for (const d of [root, ...scratch]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  test('token create prints a one-line install command that pins the server key', async () => {
    const r = await runCli(['token', 'create', '--ttl', '1h', '--server', s.url, '--data-dir', s.dataDir]);
    assert.equal(r.code, 0, r.stderr);
    const line = r.stdout.split('\n').find((l) => l.trim().startsWith('curl '));
    assert.ok(line, r.stdout);
    installCommand = line.trim();
    assert.match(installCommand, /^curl -fsSL -k --pinnedpubkey 'sha256\/\/[A-Za-z0-9+/]{43}=' https:\/\/127\.0\.0\.1:\d+\/install\.sh \| sudo sh -s -- --token 'hmj_[^']+'$/);
  });

  test('the installer installs into a root: config 0640, state 0700, executable, unit enabled; not started', async () => {
    const r = await install(`--root ${root} --no-start --name inst-1 --address ${IP} --inbound ${IP}:${ports.inbound} --admin ${IP}:${ports.admin} --service web:${ports.web}:http`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /downloaded hostmesh-agent-linux-x64 \([0-9a-f]{64}, checked\)/);
    assert.match(r.stdout, /all checks passed/, 'the pre-flight check ran and passed');
    const mode = (p: string): number => fs.statSync(path.join(root, p)).mode & 0o777;
    assert.equal(mode('etc/hostmesh/agent.yaml'), 0o640);
    assert.equal(mode('var/lib/hostmesh'), 0o700);
    assert.equal(mode('usr/local/bin/hostmesh-agent'), 0o755);
    assert.equal(fs.readlinkSync(path.join(root, 'etc/systemd/system/multi-user.target.wants/hostmesh-agent.service')), '/etc/systemd/system/hostmesh-agent.service');
    assert.equal(fs.readFileSync(path.join(root, 'etc/systemd/system/hostmesh-agent.service'), 'utf8'), fs.readFileSync(path.join(REPO_ROOT, 'systemd/hostmesh-agent.service'), 'utf8'));
    const yaml = fs.readFileSync(config(), 'utf8');
    assert.match(yaml, /^name: inst-1$/m);
    assert.match(yaml, /^caFingerprint: sha256:[0-9a-f]{64}$/m);
    assert.match(yaml, new RegExp(`^services:\\n  - name: web\\n    port: ${ports.web}\\n    protocol: http$`, 'm'));
    assert.equal(fs.readdirSync(path.join(root, 'var/lib/hostmesh')).length, 0, 'not started, so not joined');
  });

  test('the installed executable runs without Node.js on its PATH and joins', async () => {
    const emptyPath = tempDir('hostmesh-nopath-');
    scratch.push(emptyPath);
    const which = await exec('/bin/sh', ['-c', 'command -v node || echo none'], { PATH: emptyPath });
    assert.equal(which.stdout.trim(), 'none');
    agent = spawn(bin(), ['agent', '--config', config()], { env: { PATH: emptyPath, HOSTMESH_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout!.on('data', (d: Buffer) => (agentOut += d.toString()));
    agent.stderr!.on('data', (d: Buffer) => (agentOut += d.toString()));
    await waitFor(
      'the installed agent to be ready',
      async () => {
        if (agent!.exitCode !== null) throw new Error(`agent exited ${agent!.exitCode}: ${agentOut.slice(-1500)}`);
        return (await status(`http://${IP}:${ports.admin}/readyz`)) === 200;
      },
      30_000,
    );
    const host = await s.api('GET', '/v1/hosts/inst-1');
    assert.equal(host.status, 200);
    assert.equal(host.body.connected, true);
  });

  test('hostmesh check passes on the healthy host', async () => {
    const r = await exec(bin(), ['check', '--config', config()], { PATH: '/usr/bin:/bin', HOSTMESH_TOKEN: s.token });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const item of ['config', 'server reachable', 'CA pin', 'clock skew', 'host certificate', 'agent ready', 'service web', 'applied revision']) {
      assert.match(r.stdout, new RegExp(`^✔ ${item}`, 'm'), `${item} passes:\n${r.stdout}`);
    }
    assert.match(r.stdout, /held by this agent/);
    assert.match(r.stdout, /is the server's current config for inst-1/);
  });

  test('a second install is a no-op upgrade that keeps identity and config', async () => {
    const before = snapshotFiles(['etc/hostmesh/agent.yaml', 'var/lib/hostmesh/host.crt.pem', 'usr/local/bin/hostmesh-agent']);
    const r = await install(`--root ${root} --no-start`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /nothing to do: the agent is up to date/);
    assert.deepEqual(snapshotFiles(['etc/hostmesh/agent.yaml', 'var/lib/hostmesh/host.crt.pem', 'usr/local/bin/hostmesh-agent']), before);
  });

  test('check names the failing item: server down, wrong pin, expired certificate', async () => {
    const dir = tempDir('hostmesh-broken-');
    scratch.push(dir);
    const base = fs.readFileSync(config(), 'utf8');
    // Another admin port, so the running agent is not taken for this config's.
    const variant = (name: string, edit: (y: string) => string): string => {
      const f = path.join(dir, `${name}.yaml`);
      fs.writeFileSync(f, edit(base).replace(/^admin: .*$/m, `admin: ${IP}:1`));
      return f;
    };
    const check = (file: string) => exec(bin(), ['check', '--config', file], { PATH: '/usr/bin:/bin' });

    const down = await check(variant('down', (y) => y.replace(/^server: .*$/m, `server: https://127.0.4.1:1`)));
    assert.equal(down.code, 1);
    assert.match(down.stdout, /^✖ server reachable: https:\/\/127\.0\.4\.1:1: connection refused$/m);
    assert.match(down.stdout, /^ {4}fix: check that the server runs/m);
    assert.match(down.stderr, /^error: \d+ checks? failed: server reachable/m);

    const pin = await check(variant('pin', (y) => y.replace(/^caFingerprint: .*$/m, `caFingerprint: sha256:${'0'.repeat(64)}`)));
    assert.equal(pin.code, 1);
    assert.match(pin.stdout, /^✔ server reachable/m);
    assert.match(pin.stdout, /^✖ CA pin: .* does not chain to sha256:0{64}$/m);

    const state = path.join(dir, 'state');
    fs.cpSync(path.join(root, 'var/lib/hostmesh'), state, { recursive: true });
    const keyPem = fs.readFileSync(path.join(state, 'host.key.pem'), 'utf8');
    fs.writeFileSync(path.join(state, 'host.crt.pem'), await expiredHostCert(s.dataDir, 'hostmesh.local', 'inst-1', keyPem));
    const expired = await check(variant('expired', (y) => y.replace(/^stateDir: .*$/m, `stateDir: ${state}`)));
    assert.equal(expired.code, 1);
    assert.match(expired.stdout, /^✖ host certificate: expired at \S+$/m);
    assert.match(expired.stdout, /hostmesh delete host inst-1/);
  });

  test('a tampered download is refused and nothing is installed', async () => {
    const fresh = tempDir('hostmesh-root-');
    scratch.push(fresh);
    const file = built.sea;
    const size = fs.statSync(file).size;
    fs.appendFileSync(file, 'tampered');
    try {
      const r = await install(`--root ${fresh} --no-start --name tampered`);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /hostmesh-agent-linux-x64 does not match its SHA-256 \(expected [0-9a-f]{64}, got [0-9a-f]{64}\): refusing it; nothing was installed/);
    } finally {
      fs.truncateSync(file, size);
    }
    assert.deepEqual(listTree(fresh), []);
  });

  test('a wrong pin is refused, by curl and by the installer', async () => {
    const wrong = `sha256//${Buffer.alloc(32, 7).toString('base64')}`;
    const fresh = tempDir('hostmesh-root-');
    scratch.push(fresh);
    // curl refuses before a byte reaches sh (which then runs an empty script: curl's error is what the operator sees).
    const viaCurl = await install(`--root ${fresh} --no-start`, installCommand.replace(/sha256\/\/[A-Za-z0-9+/]{43}=/, wrong));
    assert.match(viaCurl.stderr, /public key does not match pinned public key/);
    assert.deepEqual(listTree(fresh), []);
    // The script itself reached the host some other way: its downloads are still pinned.
    const script = path.join(fresh, '..', `install-${path.basename(fresh)}.sh`);
    scratch.push(script);
    const got = await sh(`${installCommand.split(' | ')[0]} -o ${script}`);
    assert.equal(got.code, 0, got.stderr);
    const r = await exec('sh', [script, '--root', fresh, '--no-start', '--token', 'hmj_0123456789abcdef', '--pin', wrong]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not present the pinned key .*: it is not the server the install command came from; nothing was installed/);
    assert.deepEqual(listTree(fresh), []);
  });

  test('--dry-run changes nothing; --uninstall leaves nothing behind and says how to remove the host on the server', async () => {
    const a = agent;
    if (a && a.exitCode === null && a.signalCode === null) {
      const exited = new Promise((r) => a.once('exit', r));
      a.kill('SIGTERM');
      await exited;
    }
    const dryFresh = tempDir('hostmesh-root-');
    scratch.push(dryFresh);
    const dry = await install(`--root ${dryFresh} --dry-run --name dry --address ${IP} --inbound ${IP}:${ports.inbound} --admin ${IP}:${ports.admin}`);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /would install .*usr\/local\/bin\/hostmesh-agent/);
    assert.deepEqual(listTree(dryFresh), []);

    const before = listTree(root);
    const dryUn = await install(`--root ${root} --uninstall --dry-run`);
    assert.equal(dryUn.code, 0, dryUn.stderr);
    assert.deepEqual(listTree(root), before);

    const r = await install(`--root ${root} --uninstall`);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /hostmesh delete host inst-1/);
    assert.deepEqual(listTree(root), []);
  });

  function snapshotFiles(files: string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const f of files) {
      const st = fs.statSync(path.join(root, f));
      out[f] = `${st.size}:${st.mtimeMs}:${st.ino}`;
    }
    return out;
  }
});

function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    http
      .get(url, { agent: false, timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', () => resolve(0));
  });
}
