// The static parts of installing: the installer is shellcheck-clean POSIX sh, the systemd units
// pass `systemd-analyze verify` and carry the hardening, and the served script gets its values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fillInstallScript } from '../../server/api/routes/install.js';
import { REPO_ROOT, tempDir } from '../helpers/server.js';

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const SCRIPT = path.join(REPO_ROOT, 'scripts/install.sh');

test('scripts/install.sh is shellcheck-clean POSIX sh', { skip: has('shellcheck') ? false : 'shellcheck is not installed (.ci/run installs it)' }, () => {
  const r = spawnSync('shellcheck', ['--shell=sh', SCRIPT], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('both units pass systemd-analyze verify and are hardened', { skip: has('systemd-analyze') ? false : 'systemd-analyze is not installed' }, () => {
  const dir = tempDir('hostmesh-units-');
  try {
    for (const unit of ['hostmesh-agent.service', 'hostmesh-server.service']) {
      const text = fs.readFileSync(path.join(REPO_ROOT, 'systemd', unit), 'utf8');
      for (const line of ['ProtectSystem=strict', 'ProtectHome=yes', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=', 'Restart=on-failure', 'StartLimitBurst=5', 'StateDirectory=']) {
        assert.match(text, new RegExp(`^${line}`, 'm'), `${unit} has ${line}`);
      }
      assert.match(text, /^LimitNOFILE=\d{5,}$/m);
      assert.match(text, /^RestrictAddressFamilies=.*AF_NETLINK/m);
      assert.doesNotMatch(text, /^MemoryDenyWriteExecute=yes/m);
      // verify insists that ExecStart's binary exists; point it at one that does.
      const file = path.join(dir, unit);
      fs.writeFileSync(file, text.replace(/^ExecStart=\S+/m, `ExecStart=${process.execPath}`));
      const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr.trim(), '', `systemd-analyze verify ${unit}: ${r.stderr}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the served installer gets the server, fingerprint and pin; values that could break out of quotes are refused', () => {
  const script = fs.readFileSync(SCRIPT, 'utf8');
  const values = { HM_SERVER: 'https://10.0.0.1:7443', HM_CA_FINGERPRINT: `sha256:${'a'.repeat(64)}`, HM_PIN: `sha256//${'A'.repeat(43)}=` };
  const out = fillInstallScript(script, values);
  assert.match(out, /^HM_SERVER='https:\/\/10\.0\.0\.1:7443'$/m);
  assert.match(out, /^HM_CA_FINGERPRINT='sha256:a{64}'$/m);
  assert.match(out, /^HM_PIN='sha256\/\/A{43}='$/m);
  assert.throws(() => fillInstallScript(script, { ...values, HM_SERVER: "https://x'; rm -rf /; '" }), /cannot put HM_SERVER/);
});
