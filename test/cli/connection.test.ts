import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { normalizeServerUrl, resolveConnection, type Env } from '../../cli/connection.js';
import { CliError, UsageError } from '../../cli/errors.js';

const PEM = (name: string): string => `-----BEGIN CERTIFICATE-----\n${name}\n-----END CERTIFICATE-----\n`;

/** A fake server data dir (`<dir>/data`) with all three files, plus two loose CA files. */
const made: string[] = [];
after(() => made.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function fixture(): { cwd: string; dataDir: string; flagCa: string; envCa: string; none: string } {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'hostmesh-cli-conn-'));
  made.push(cwd);
  const dataDir = path.join(cwd, 'data');
  fs.mkdirSync(path.join(dataDir, 'ca'), { recursive: true });
  fs.writeFileSync(path.join(dataDir, 'admin.token'), 'tok-from-file\n');
  fs.writeFileSync(path.join(dataDir, 'ca', 'root.crt.pem'), PEM('file'));
  fs.writeFileSync(path.join(dataDir, 'server.json'), JSON.stringify({ url: 'https://127.0.0.1:7443' }));
  fs.writeFileSync(path.join(cwd, 'flag.pem'), PEM('flag'));
  fs.writeFileSync(path.join(cwd, 'env.pem'), PEM('env'));
  return { cwd, dataDir, flagCa: path.join(cwd, 'flag.pem'), envCa: path.join(cwd, 'env.pem'), none: path.join(cwd, 'nowhere') };
}

const fullEnv = (f: ReturnType<typeof fixture>): Env => ({
  HOSTMESH_ADDR: 'env.example:9000',
  HOSTMESH_TOKEN: 'tok-from-env',
  HOSTMESH_CA_FILE: f.envCa,
});

test('flags beat env, env beats the data dir', () => {
  const f = fixture();
  const c = resolveConnection({ server: 'https://flag.example:1234', token: 'tok-from-flag', caFile: 'flag.pem' }, { env: fullEnv(f), cwd: f.cwd, systemDataDir: f.none });
  assert.equal(c.url, 'https://flag.example:1234');
  assert.equal(c.token, 'tok-from-flag');
  assert.equal(c.ca, PEM('flag'));
  assert.deepEqual(c.sources, { url: '--server', token: '--token', ca: '--ca-file flag.pem' });
});

test('env fills what flags do not give', () => {
  const f = fixture();
  const c = resolveConnection({ token: 'tok-from-flag' }, { env: fullEnv(f), cwd: f.cwd, systemDataDir: f.none });
  assert.equal(c.url, 'https://env.example:9000');
  assert.equal(c.token, 'tok-from-flag');
  assert.equal(c.ca, PEM('env'));
  assert.equal(c.sources.url, 'HOSTMESH_ADDR');
});

test('the local ./data dir fills the rest', () => {
  const f = fixture();
  const c = resolveConnection({}, { env: {}, cwd: f.cwd, systemDataDir: f.none });
  assert.equal(c.url, 'https://127.0.0.1:7443');
  assert.equal(c.token, 'tok-from-file');
  assert.equal(c.ca, PEM('file'));
  assert.equal(c.sources.ca, path.join(f.dataDir, 'ca', 'root.crt.pem'));
});

test('--data-dir beats HOSTMESH_DATA_DIR beats ./data beats the system dir', () => {
  const f = fixture();
  const other = path.join(f.cwd, 'other');
  fs.cpSync(f.dataDir, other, { recursive: true });
  fs.writeFileSync(path.join(other, 'admin.token'), 'tok-other\n');
  const sys = path.join(f.cwd, 'sys');
  fs.cpSync(f.dataDir, sys, { recursive: true });
  fs.writeFileSync(path.join(sys, 'admin.token'), 'tok-sys\n');

  assert.equal(resolveConnection({ dataDir: 'other' }, { env: { HOSTMESH_DATA_DIR: f.none }, cwd: f.cwd, systemDataDir: sys }).token, 'tok-other');
  assert.equal(resolveConnection({}, { env: { HOSTMESH_DATA_DIR: other }, cwd: f.cwd, systemDataDir: sys }).token, 'tok-other');
  assert.equal(resolveConnection({}, { env: {}, cwd: f.cwd, systemDataDir: sys }).token, 'tok-from-file');
  assert.equal(resolveConnection({}, { env: {}, cwd: other /* has no ./data */, systemDataDir: sys }).token, 'tok-sys');
});

test('the data dir is not read at all when flags and env give everything', () => {
  const f = fixture();
  fs.writeFileSync(path.join(f.dataDir, 'server.json'), 'not json');
  const c = resolveConnection({ server: 'h:1' }, { env: fullEnv(f), cwd: f.cwd, systemDataDir: f.none });
  assert.equal(c.url, 'https://h:1');
});

test('a missing piece names the flag and env var to set', () => {
  const f = fixture();
  const empty = path.join(f.cwd, 'empty');
  fs.mkdirSync(empty);
  const opts = { env: {}, cwd: empty, systemDataDir: f.none };
  assert.throws(() => resolveConnection({}, opts), (e: unknown) => e instanceof CliError && /^no server address: set --server or HOSTMESH_ADDR/.test(e.message));
  assert.throws(() => resolveConnection({ server: 'h:1' }, opts), { message: /^no admin token: set --token or HOSTMESH_TOKEN/ });
  assert.throws(() => resolveConnection({ server: 'h:1', token: 't' }, opts), { message: /^no mesh root certificate: set --ca-file or HOSTMESH_CA_FILE/ });
  assert.throws(() => resolveConnection({ server: 'h:1', token: 't', caFile: 'missing.pem' }, opts), {
    message: /^cannot read the CA file .*missing\.pem \(from --ca-file\): no such file$/,
  });
});

test('a CA file that is not PEM is refused before any connection', () => {
  const f = fixture();
  fs.writeFileSync(path.join(f.cwd, 'junk.pem'), 'hello');
  assert.throws(() => resolveConnection({ server: 'h:1', token: 't', caFile: 'junk.pem' }, { env: {}, cwd: f.cwd }), /does not hold a PEM certificate/);
});

test('server addresses: host:port, bare host, IPv6, URLs', () => {
  assert.equal(normalizeServerUrl('10.0.0.1:7443'), 'https://10.0.0.1:7443');
  assert.equal(normalizeServerUrl('mesh.internal'), 'https://mesh.internal:7443');
  assert.equal(normalizeServerUrl('[::1]:8443'), 'https://[::1]:8443');
  assert.equal(normalizeServerUrl('https://mesh.internal:9443/'), 'https://mesh.internal:9443');
  assert.equal(normalizeServerUrl('https://mesh.internal'), 'https://mesh.internal');
  assert.throws(() => normalizeServerUrl('http://mesh.internal:7443'), (e: unknown) => e instanceof UsageError && /HTTPS only/.test(e.message));
  assert.throws(() => normalizeServerUrl('ftp://x', 'HOSTMESH_ADDR'), (e: unknown) => e instanceof CliError && /from HOSTMESH_ADDR/.test(e.message));
});
