// The built executable, run as an operator would. It must fail with one line and exit 1 when
// the server is not there, without a stack trace.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostmesh-cli-main-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function run(args: string[], input = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // A bare env and an empty cwd, so no HOSTMESH_* variable or ./data of the developer leaks in.
    const p = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { PATH: process.env['PATH'] ?? '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input);
  });
}

const PEM = '-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIBATAKBggqhkjOPQQDAjAAMB4XDTI1MDEwMTAwMDAwMFoX\n-----END CERTIFICATE-----\n';

test('starts with a shebang so npm can link it as a bin', () => {
  assert.ok(fs.readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n'));
});

test('get services against a closed port: exit 1, one line saying the server cannot be reached', async () => {
  const ca = path.join(dir, 'root.pem');
  fs.writeFileSync(ca, PEM);
  const r = await run(['get', 'services', '--server', 'https://127.0.0.1:1', '--token', 'x', '--ca-file', ca]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  const errLines = r.stderr.trimEnd().split('\n');
  assert.equal(errLines.length, 1, r.stderr);
  assert.match(errLines[0]!, /^error: cannot reach the server at https:\/\/127\.0\.0\.1:1: connection refused/);
});

test('no server configured anywhere: exit 1, one line naming the flag and env var', async () => {
  const r = await run(['get', 'services', '--data-dir', path.join(dir, 'none')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: no server address: set --server or HOSTMESH_ADDR.*\n$/);
});

test('usage errors exit 2', async () => {
  const r = await run(['get', 'pods', '--server', 'x:1', '--token', 't', '--ca-file', 'none']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^error: unknown kind "pods"/);
  assert.equal((await run(['frobnicate'])).code, 2);
  assert.equal((await run(['apply'])).code, 2);
});

test('a YAML syntax error on stdin is reported before any connection is tried', async () => {
  const r = await run(['apply', '-f', '-', '--server', 'https://127.0.0.1:1', '--token', 'x', '--ca-file', 'none'], 'kind: Service\n---\nkind: Service\n  name: b\n');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: <stdin>: document 2, line 3, column 7: .+\n$/);
});

test('--help exits 0', async () => {
  const r = await run(['--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /apply/);
});
