// `npm run demo`: a whole mesh on this machine. A server, three agents on their own loopback
// addresses, two versions of a `web` service and an `api` host that calls it through the mesh,
// with a canary route and a default-deny policy. Prints a curl that crosses the mesh, then runs
// until Ctrl-C and removes everything it started.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { Agent, request } from 'undici';

const ROOT = path.resolve(new URL('.', import.meta.url).pathname, '../..');
const CLI = path.join(ROOT, 'dist/cli/main.js');
const SERVER = '127.0.0.1:17443';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostmesh-demo-'));
const children: ChildProcess[] = [];
const servers: http.Server[] = [];

function start(name: string, args: string[]): ChildProcess {
  const log = fs.openSync(path.join(dir, `${name}.log`), 'a');
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', log, log], env: { ...process.env, HOSTMESH_LOG_LEVEL: 'info' } });
  children.push(p);
  return p;
}

async function waitUntil(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (logs in ${dir})`);
}

function demoService(ip: string, port: number, name: string): Promise<void> {
  const s = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello from ${name} on ${ip}:${port} — you called ${req.method} ${req.url} as ${req.headers['x-hostmesh-source'] ?? 'nobody'}\n`);
  });
  servers.push(s);
  return new Promise((resolve, reject) => s.once('error', reject).listen(port, ip, () => resolve()));
}

async function main(): Promise<void> {
  const dataDir = path.join(dir, 'server');
  start('server', ['server', '--data-dir', dataDir, '--listen', SERVER]);
  await waitUntil('the server', async () => fs.existsSync(path.join(dataDir, 'server.json')));
  const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const ca = fs.readFileSync(path.join(dataDir, 'ca', 'root.crt.pem'), 'utf8');
  const dispatcher = new Agent({ connect: { ca } });
  const api = async (method: string, p: string, body?: unknown): Promise<any> => {
    const r = await request(`https://${SERVER}${p}`, {
      method: method as 'GET',
      dispatcher,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await r.body.json();
    if (r.statusCode >= 400) throw new Error(`${method} ${p}: ${JSON.stringify(json)}`);
    return json;
  };

  await api('POST', '/v1/apply', {
    documents: [
      { kind: 'Mesh', name: 'default', spec: { defaultAccess: 'deny' } },
      { kind: 'Service', name: 'web', spec: { protocol: 'http', port: 8080 } },
      { kind: 'Service', name: 'api', spec: { protocol: 'http', port: 8081 } },
      {
        kind: 'Route',
        name: 'web',
        spec: {
          service: 'web',
          rules: [
            { match: { pathPrefix: '/v2' }, destinations: [{ subset: { version: 'v2' }, weight: 100 }] },
            { destinations: [{ subset: { version: 'v1' }, weight: 90 }, { subset: { version: 'v2' }, weight: 10 }] },
          ],
          timeout: '5s',
          retries: { attempts: 2, on: ['connect-failure', 'reset', '503'] },
        },
      },
      { kind: 'AccessPolicy', name: 'web', spec: { service: 'web', rules: [{ from: ['api'], action: 'allow' }, { from: ['*'], action: 'deny', http: { paths: ['/admin/*'] } }] } },
    ],
  });
  const join = (await api('POST', '/v1/tokens', { ttl: '1h', description: 'demo' })).token as string;
  const fingerprint = (await api('GET', '/v1/ca/root')).fingerprint as string;

  await demoService('127.0.0.11', 8080, 'web v1');
  await demoService('127.0.0.12', 8080, 'web v2');
  await demoService('127.0.0.13', 8081, 'api');
  const hosts = [
    { name: 'web-1', ip: '127.0.0.11', services: [{ name: 'web', port: 8080, host: '127.0.0.11', labels: { version: 'v1' }, check: { http: '/', interval: '2s' } }] },
    { name: 'web-2', ip: '127.0.0.12', services: [{ name: 'web', port: 8080, host: '127.0.0.12', labels: { version: 'v2' }, check: { http: '/', interval: '2s' } }] },
    { name: 'api-1', ip: '127.0.0.13', services: [{ name: 'api', port: 8081, host: '127.0.0.13' }], upstreams: [{ service: 'web', localPort: 9001, bind: '127.0.0.13' }] },
  ];
  for (const h of hosts) {
    const file = path.join(dir, `${h.name}.yaml`);
    fs.writeFileSync(
      file,
      stringify({
        server: `https://${SERVER}`,
        caFingerprint: fingerprint,
        token: join,
        name: h.name,
        address: h.ip,
        stateDir: path.join(dir, h.name),
        inbound: `${h.ip}:15443`,
        admin: `${h.ip}:15090`,
        services: h.services,
        ...(h.upstreams ? { upstreams: h.upstreams } : {}),
      }),
    );
    start(h.name, ['agent', '--config', file]);
  }
  for (const h of hosts) {
    await waitUntil(`${h.name} ready`, async () => (await fetch(`http://${h.ip}:15090/readyz`)).status === 200);
  }
  await waitUntil('web endpoints at api-1', async () => {
    const dump = (await (await fetch('http://127.0.0.13:15090/config_dump')).json()) as any;
    return (dump.slice?.upstreams?.web?.endpoints ?? []).filter((e: { healthy: boolean }) => e.healthy).length === 2;
  });
  const sample = await (await fetch('http://127.0.0.13:9001/hello')).text();

  const env = `HOSTMESH_DATA_DIR=${dataDir}`;
  process.stdout.write(`
hostmesh demo is running: a server on https://${SERVER} and three agents.

  web-1  127.0.0.11  web (version v1)
  web-2  127.0.0.12  web (version v2)
  api-1  127.0.0.13  api, which reaches web on 127.0.0.13:9001 through the mesh (mTLS between agents)

Cross the mesh (90 % v1, 10 % v2; /v2/… always v2):

  curl http://127.0.0.13:9001/hello
  curl http://127.0.0.13:9001/v2/hello
  curl -i http://127.0.0.13:9001/admin/x        # denied by policy: 403, x-hostmesh-error

  ${sample.trim()}

Look around:

  ${env} node ${CLI} status
  ${env} node ${CLI} get instances
  ${env} node ${CLI} stat --edges             # success rate, rps, latency per edge (after a few curls; summaries every 10 s)
  curl http://127.0.0.13:15090/metrics          # the calling agent's metrics
  curl http://127.0.0.13:15090/config_dump      # what it was pushed

Logs are in ${dir}. Ctrl-C stops everything.
`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

async function cleanup(): Promise<void> {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
  for (const s of servers) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

main()
  .catch((e: Error) => {
    process.stderr.write(`demo failed: ${e.message}\n`);
    process.exitCode = 1;
  })
  .finally(() => void cleanup());
