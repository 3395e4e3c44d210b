// Private nginx instances for the benchmark: the upstream (a static `200 ok`) and the reference
// pair a user would build by hand, A (client side) → mTLS (TLS 1.3, client cert verified) → B
// (server side), at L7 (http) and L4 (stream). Each instance has its own prefix, config, pid file
// and error log in the temp dir (`-p`, `-c`, `-e`), runs in the foreground with one worker, and is
// pinned with taskset. The system nginx and its config are never touched.
import fs from 'node:fs';
import path from 'node:path';
import { B_SERVER_NAME, type PairCerts } from './certs.js';
import type { Tools } from './deps.js';
import { waitListening } from './netutil.js';
import { run, type Procs, type Tracked } from './procs.js';
import { childrenOf } from './sample.js';

export interface NginxInstance {
  name: string;
  dir: string;
  proc: Tracked;
  /** The master's pid (taskset execs nginx, so it is the spawned pid). */
  pid: number;
  workers(): number[];
  errorLog(): string;
}

// Connections are long-lived on every hop: a proxy that reconnects every 1000 requests (nginx's
// default keepalive_requests) would measure handshakes, not proxying.
const KEEPALIVE = `
  keepalive_requests 1000000;
  keepalive_timeout 300s;`;

function mainConf(dir: string, tools: Tools, body: { http?: string; stream?: string }): string {
  const t = (n: string): string => path.join(dir, 'tmp', n);
  return [
    body.stream && tools.streamModule ? `load_module ${tools.streamModule};` : '',
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    `pid ${path.join(dir, 'nginx.pid')};`,
    `error_log ${path.join(dir, 'error.log')} warn;`,
    'events { worker_connections 4096; }',
    body.http
      ? `http {
  access_log off;
  server_tokens off;
  default_type text/plain;
  client_body_temp_path ${t('body')};
  proxy_temp_path ${t('proxy')};
  fastcgi_temp_path ${t('fastcgi')};
  uwsgi_temp_path ${t('uwsgi')};
  scgi_temp_path ${t('scgi')};${KEEPALIVE}
${body.http}
}`
      : '',
    body.stream ? `stream {\n${body.stream}\n}` : '',
    '',
  ].join('\n');
}

export function upstreamConf(port: number): { http: string } {
  return {
    http: `  server {
    listen 127.0.0.1:${port};
    location / { return 200 "ok"; }
  }`,
  };
}

export interface PairPorts {
  /** nginx A, what wrk dials: plain http (L7) and plain tcp (L4). */
  aHttp: number;
  aTcp: number;
  /** nginx B, the mTLS listeners A dials. */
  bHttps: number;
  bTls: number;
  upstream: number;
}

export function pairAConf(p: PairPorts, c: PairCerts): { http: string; stream: string } {
  const clientTls = (prefix: string): string => `
    ${prefix}ssl_certificate ${c.aCert};
    ${prefix}ssl_certificate_key ${c.aKey};
    ${prefix}ssl_trusted_certificate ${c.caCert};
    ${prefix}ssl_verify on;
    ${prefix}ssl_verify_depth 2;
    ${prefix}ssl_server_name on;
    ${prefix}ssl_name ${B_SERVER_NAME};
    ${prefix}ssl_protocols TLSv1.3;`;
  return {
    http: `  upstream pair_b {
    server 127.0.0.1:${p.bHttps};
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${p.aHttp};
    location / {
      proxy_pass https://pair_b;
      proxy_http_version 1.1;
      proxy_set_header Connection "";${clientTls('proxy_')}
    }
  }`,
    stream: `  server {
    listen 127.0.0.1:${p.aTcp};
    proxy_pass 127.0.0.1:${p.bTls};
    proxy_connect_timeout 2s;
    proxy_ssl on;${clientTls('proxy_')}
  }`,
  };
}

export function pairBConf(p: PairPorts, c: PairCerts): { http: string; stream: string } {
  const serverTls = `
    ssl_certificate ${c.bCert};
    ssl_certificate_key ${c.bKey};
    ssl_client_certificate ${c.caCert};
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_protocols TLSv1.3;`;
  return {
    http: `  upstream pair_up {
    server 127.0.0.1:${p.upstream};
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${p.bHttps} ssl;${serverTls}
    location / {
      proxy_pass http://pair_up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`,
    stream: `  server {
    listen 127.0.0.1:${p.bTls} ssl;${serverTls}
    proxy_pass 127.0.0.1:${p.upstream};
    proxy_connect_timeout 2s;
  }`,
  };
}

/** Write the config, test it (`nginx -t`), start it pinned to `cpu`, and wait for its ports. */
export async function startNginx(
  procs: Procs,
  tools: Tools,
  name: string,
  dir: string,
  body: { http?: string; stream?: string },
  ports: number[],
  cpu: number,
): Promise<NginxInstance> {
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  const errorLog = path.join(dir, 'error.log');
  fs.writeFileSync(conf, mainConf(dir, tools, body));
  const args = ['-e', errorLog, '-p', `${dir}/`, '-c', conf];
  const test = await run(procs, `${name} nginx -t`, tools.nginx, ['-t', '-q', ...args], 15_000);
  if (test.code !== 0) throw new Error(`${name}: nginx -t rejected ${conf}: ${(test.stderr || test.stdout).trim()}`);
  const proc = procs.start(`nginx ${name}`, tools.taskset, ['-c', String(cpu), tools.nginx, ...args]);
  const inst: NginxInstance = {
    name,
    dir,
    proc,
    pid: proc.pid,
    workers: () => childrenOf(proc.pid),
    errorLog: () => {
      try {
        return fs.readFileSync(errorLog, 'utf8');
      } catch {
        return '';
      }
    },
  };
  for (const port of ports) {
    if (!(await waitListening('127.0.0.1', port, 10_000, () => proc.alive()))) {
      const why = proc.alive() ? `port ${port} not listening after 10 s` : `exited (${JSON.stringify(await proc.exited)})`;
      throw new Error(`nginx ${name}: ${why}; output: ${proc.output().trim().slice(-1500)} ${inst.errorLog().trim().slice(-1500)}`);
    }
  }
  return inst;
}
