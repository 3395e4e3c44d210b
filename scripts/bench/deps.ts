// What the benchmark needs from the machine: nginx (with the stream module, for the L4 pair), wrk,
// taskset and openssl. Missing ones are installed with apt-get, non-interactively; the system
// nginx's own config is never read or changed (private instances use -c/-p in a temp dir).
import fs from 'node:fs';
import path from 'node:path';
import { run, type Procs } from './procs.js';

export interface Tools {
  nginx: string;
  nginxVersion: string;
  /** `load_module` path when the stream module is dynamic; null when it is built in. */
  streamModule: string | null;
  wrk: string;
  wrkVersion: string;
  taskset: string;
  openssl: string;
  installed: string[];
}

type Log = (msg: string) => void;

const EXTRA_PATH = ['/usr/sbin', '/sbin', '/usr/local/sbin', '/usr/bin', '/bin', '/usr/local/bin'];

export function which(bin: string): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter(Boolean), ...EXTRA_PATH];
  for (const d of dirs) {
    const p = path.join(d, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  return null;
}

interface NginxBuild {
  version: string;
  stream: 'static' | 'dynamic' | 'none';
  modulesPath: string;
}

async function nginxBuild(procs: Procs, nginx: string): Promise<NginxBuild> {
  const r = await run(procs, 'nginx -V', nginx, ['-V'], 10_000);
  const text = r.stdout + r.stderr;
  const version = /nginx version: (\S+)/.exec(text)?.[1] ?? 'unknown';
  const modulesPath = /--modules-path=(\S+)/.exec(text)?.[1] ?? '/usr/lib/nginx/modules';
  const stream = /--with-stream=dynamic/.test(text) ? 'dynamic' : /--with-stream(\s|$)/.test(text) ? 'static' : 'none';
  return { version, stream, modulesPath };
}

async function aptInstall(procs: Procs, pkgs: string[], log: Log): Promise<boolean> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive', NEEDRESTART_MODE: 'a' };
  const args = ['install', '-y', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', ...pkgs];
  log(`installing ${pkgs.join(' ')} with apt-get…`);
  let r = await run(procs, 'apt-get install', 'apt-get', args, 600_000, { env });
  if (r.code === 0) return true;
  log(`apt-get install failed (${lastLine(r.stderr)}); running apt-get update and retrying…`);
  const u = await run(procs, 'apt-get update', 'apt-get', ['update'], 600_000, { env });
  if (u.code !== 0) log(`apt-get update failed: ${lastLine(u.stderr)}`);
  r = await run(procs, 'apt-get install', 'apt-get', args, 600_000, { env });
  if (r.code !== 0) log(`apt-get install ${pkgs.join(' ')} failed: ${lastLine(r.stderr)}`);
  return r.code === 0;
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop()?.trim() || 'no output';
}

export class DependencyError extends Error {}

export async function ensureTools(procs: Procs, log: Log): Promise<Tools> {
  const installed: string[] = [];
  const canInstall = typeof process.getuid === 'function' && process.getuid() === 0 && which('apt-get') !== null;
  const install = async (pkgs: string[], what: string): Promise<void> => {
    if (!canInstall) {
      throw new DependencyError(`${what} is missing and cannot be installed here (need root and apt-get): run \`apt-get install -y ${pkgs.join(' ')}\` and retry`);
    }
    if (!(await aptInstall(procs, pkgs, log))) throw new DependencyError(`could not install ${pkgs.join(' ')} with apt-get; install them by hand and retry`);
    installed.push(...pkgs);
  };

  const missing: string[] = [];
  if (!which('wrk')) missing.push('wrk');
  if (!which('taskset')) missing.push('util-linux');
  if (!which('openssl')) missing.push('openssl');
  if (missing.length) await install(missing, missing.join(', '));

  if (!which('nginx')) {
    // nginx-light is gone from newer Debian releases; plain nginx is the fallback.
    try {
      await install(['nginx-light'], 'nginx');
    } catch (e) {
      if (!canInstall) throw e;
      log('nginx-light is not available; trying nginx');
      await install(['nginx'], 'nginx');
    }
  }
  const nginx = which('nginx');
  const wrk = which('wrk');
  const taskset = which('taskset');
  const openssl = which('openssl');
  if (!nginx || !wrk || !taskset || !openssl) {
    throw new DependencyError(`still missing after install: ${[!nginx && 'nginx', !wrk && 'wrk', !taskset && 'taskset', !openssl && 'openssl'].filter(Boolean).join(', ')}`);
  }

  let build = await nginxBuild(procs, nginx);
  let streamModule: string | null = null;
  if (build.stream === 'dynamic' || build.stream === 'none') {
    const so = path.join(build.modulesPath, 'ngx_stream_module.so');
    if (!fs.existsSync(so)) {
      await install(['libnginx-mod-stream'], 'the nginx stream module (for the L4 nginx pair)');
      build = await nginxBuild(procs, nginx);
    }
    if (!fs.existsSync(so)) throw new DependencyError(`nginx has no stream module (${so} not found after installing libnginx-mod-stream)`);
    streamModule = so;
  }

  const w = await run(procs, 'wrk -v', wrk, ['-v'], 10_000);
  const wrkVersion = /wrk (\S+)/.exec(w.stdout + w.stderr)?.[1] ?? 'unknown';
  return { nginx, nginxVersion: build.version, streamModule, wrk, wrkVersion, taskset, openssl, installed };
}

/** CPUs this process may run on (Cpus_allowed_list), e.g. [0, 1]. */
export function allowedCpus(): number[] {
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const list = /Cpus_allowed_list:\s*(\S+)/.exec(status)?.[1];
    if (list) {
      const out: number[] = [];
      for (const part of list.split(',')) {
        const [a, b] = part.split('-').map(Number);
        if (a === undefined || Number.isNaN(a)) continue;
        for (let c = a; c <= (b ?? a); c++) out.push(c);
      }
      if (out.length) return out;
    }
  } catch {
    /* not Linux? */
  }
  return [0];
}
