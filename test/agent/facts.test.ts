// Host facts: os-release(5) read directly gives the distro and release that systeminformation
// reported for the same file; node:os fills the rest, and a missing file leaves its answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { collectFacts, distroOf, parseOsRelease } from '../../agent/facts.js';

const DEBIAN = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
`;

test('os-release: quoted and bare values, comments and junk skipped', () => {
  const r = parseOsRelease(`# comment\nNAME='Alpine Linux'\nID=alpine\nnot a line\nX="say \\"hi\\""\n`);
  assert.deepEqual(r, { NAME: 'Alpine Linux', ID: 'alpine', X: 'say "hi"' });
});

test('distro and release as systeminformation named them', () => {
  assert.deepEqual(distroOf(parseOsRelease(DEBIAN)), { distro: 'Debian GNU/Linux', release: '12' });
  const ubuntu = 'NAME="Ubuntu"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\nVERSION_ID="22.04"\n';
  assert.deepEqual(distroOf(parseOsRelease(ubuntu)), { distro: 'Ubuntu', release: '22.04.4 LTS' });
  const rocky = 'NAME="Rocky Linux"\nVERSION="9.3 (Blue Onyx)"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\nVERSION_ID="9.3"\n';
  assert.deepEqual(distroOf(parseOsRelease(rocky)), { distro: 'Rocky Linux', release: '9.3' });
  // No PRETTY_NAME or VERSION: VERSION_ID.
  assert.deepEqual(distroOf(parseOsRelease('NAME=Arch\nVERSION_ID=rolling\n')), { distro: 'Arch', release: 'rolling' });
});

test('collectFacts: os-release on Linux, node:os for the rest', { skip: os.platform() !== 'linux' }, async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hm-facts-'));
  try {
    const file = path.join(dir, 'os-release');
    await fs.writeFile(file, DEBIAN);
    const f = await collectFacts(2000, [path.join(dir, 'missing'), file]);
    assert.equal(f['distro'], 'Debian GNU/Linux');
    assert.equal(f['release'], '12');
    assert.equal(f['kernel'], os.release());
    assert.equal(f['memoryBytes'], os.totalmem());
    assert.ok(typeof f['cpus'] === 'number' && f['cpus'] > 0);
    // Nothing to read: node:os's answers stay.
    const bare = await collectFacts(2000, [path.join(dir, 'missing')]);
    assert.equal(bare['distro'], os.type());
    assert.equal(bare['release'], os.release());
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
