// Where the server is, which token to present and which CA to trust. Each piece comes from the
// first of: a flag, an environment variable, the local server's data dir. The data dir is only
// read for the pieces still missing, so a remote operator with flags or env never touches it.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { CliError, UsageError } from './errors.js';

export const DEFAULT_PORT = 7443;
export const SYSTEM_DATA_DIR = '/var/lib/hostmesh-server';

export interface ConnectionFlags {
  server?: string | undefined;
  token?: string | undefined;
  caFile?: string | undefined;
  dataDir?: string | undefined;
}

export type Env = Readonly<Record<string, string | undefined>>;

export interface Connection {
  /** `https://host:port`, no trailing slash */
  url: string;
  token: string;
  /** PEM of the mesh root: the only CA the client trusts for the server. */
  ca: string;
  /** Where each piece came from, for error messages that tell the operator what to change. */
  sources: { url: string; token: string; ca: string };
}

export interface ResolveOptions {
  env?: Env;
  cwd?: string;
  /** The packaged install's data dir; a parameter so tests do not depend on the machine. */
  systemDataDir?: string;
}

interface Found {
  value: string;
  source: string;
}

export function resolveConnection(flags: ConnectionFlags, opts: ResolveOptions = {}): Connection {
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const dataDir = lazy(() => findDataDir(flags.dataDir, env, cwd, opts.systemDataDir ?? SYSTEM_DATA_DIR));

  const url = urlFrom(flags, env, dataDir);
  const token = tokenFrom(flags, env, dataDir);
  const ca = caFrom(flags, env, cwd, dataDir);
  return { url: url.value, token: token.value, ca: ca.value, sources: { url: url.source, token: token.source, ca: ca.source } };
}

interface DataDir {
  dir: string;
  exists: boolean;
  source: string;
}

/** `--data-dir`, then HOSTMESH_DATA_DIR, then `./data` if present, then the system location. */
export function findDataDir(flag: string | undefined, env: Env, cwd: string, systemDataDir = SYSTEM_DATA_DIR): DataDir {
  const given = flag ? { dir: flag, source: '--data-dir' } : env['HOSTMESH_DATA_DIR'] ? { dir: env['HOSTMESH_DATA_DIR'], source: 'HOSTMESH_DATA_DIR' } : null;
  if (given) {
    const dir = path.resolve(cwd, given.dir);
    return { dir, exists: isDir(dir), source: given.source };
  }
  const local = path.resolve(cwd, 'data');
  if (isDir(local)) return { dir: local, exists: true, source: './data' };
  return { dir: systemDataDir, exists: isDir(systemDataDir), source: 'default' };
}

function urlFrom(flags: ConnectionFlags, env: Env, dataDir: () => DataDir): Found {
  if (flags.server) return { value: normalizeServerUrl(flags.server, '--server'), source: '--server' };
  const fromEnv = env['HOSTMESH_ADDR'];
  if (fromEnv) return { value: normalizeServerUrl(fromEnv, 'HOSTMESH_ADDR'), source: 'HOSTMESH_ADDR' };
  const dd = dataDir();
  const file = path.join(dd.dir, 'server.json');
  const text = readIfPresent(file, '--server or HOSTMESH_ADDR');
  if (text === null) throw new CliError(`no server address: set --server or HOSTMESH_ADDR ${lookedIn(dd, 'server.json')}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not valid JSON: set --server or HOSTMESH_ADDR instead`);
  }
  const url = (parsed as { url?: unknown } | null)?.url;
  if (typeof url !== 'string' || url === '') throw new CliError(`${file} has no "url": set --server or HOSTMESH_ADDR instead`);
  return { value: normalizeServerUrl(url, file), source: file };
}

function tokenFrom(flags: ConnectionFlags, env: Env, dataDir: () => DataDir): Found {
  if (flags.token) return { value: flags.token.trim(), source: '--token' };
  const fromEnv = env['HOSTMESH_TOKEN'];
  if (fromEnv) return { value: fromEnv.trim(), source: 'HOSTMESH_TOKEN' };
  const dd = dataDir();
  const file = path.join(dd.dir, 'admin.token');
  const text = readIfPresent(file, '--token or HOSTMESH_TOKEN');
  if (text === null) throw new CliError(`no admin token: set --token or HOSTMESH_TOKEN ${lookedIn(dd, 'admin.token')}`);
  const token = text.split('\n', 1)[0]?.trim() ?? '';
  if (!token) throw new CliError(`${file} is empty: set --token or HOSTMESH_TOKEN instead`);
  return { value: token, source: file };
}

function caFrom(flags: ConnectionFlags, env: Env, cwd: string, dataDir: () => DataDir): Found {
  const given = flags.caFile ? { via: '--ca-file', file: flags.caFile } : env['HOSTMESH_CA_FILE'] ? { via: 'HOSTMESH_CA_FILE', file: env['HOSTMESH_CA_FILE'] } : null;
  if (given) {
    const file = path.resolve(cwd, given.file);
    const text = readIfPresent(file, given.via);
    if (text === null) throw new CliError(`cannot read the CA file ${file} (from ${given.via}): no such file`);
    return { value: checkPem(text, file), source: given.via === '--ca-file' ? `--ca-file ${given.file}` : `HOSTMESH_CA_FILE=${given.file}` };
  }
  const dd = dataDir();
  const file = path.join(dd.dir, 'ca', 'root.crt.pem');
  const text = readIfPresent(file, '--ca-file or HOSTMESH_CA_FILE');
  if (text === null) throw new CliError(`no mesh root certificate: set --ca-file or HOSTMESH_CA_FILE ${lookedIn(dd, 'ca/root.crt.pem')}`);
  return { value: checkPem(text, file), source: file };
}

/**
 * `host:port`, `host`, `[::1]:7443` or an https URL → `https://host:port`. A bare host gets the
 * server's default port; a URL keeps what it says, because someone who typed a URL meant it.
 */
export function normalizeServerUrl(text: string, source = '--server'): string {
  const raw = text.trim();
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  let url: URL;
  try {
    url = new URL(hasScheme ? raw : `https://${raw}`);
  } catch {
    throw invalidAddress(raw, source);
  }
  if (url.protocol === 'http:') throw invalidAddress(raw, source, 'the server speaks HTTPS only, use https://');
  if (url.protocol !== 'https:' || !url.hostname || url.username || url.password) throw invalidAddress(raw, source);
  if (!hasScheme && url.port === '') url.port = String(DEFAULT_PORT);
  return url.origin;
}

function invalidAddress(raw: string, source: string, why = 'expected host:port or https://host:port'): Error {
  const msg = `invalid server address "${raw}" from ${source}: ${why}`;
  return source === '--server' ? new UsageError(msg) : new CliError(msg);
}

function checkPem(text: string, file: string): string {
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new CliError(`${file} does not hold a PEM certificate`);
  return text;
}

/** The file's text, or null when it does not exist. Unreadable files are errors with a way out. */
function readIfPresent(file: string, alternative: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code === 'EACCES' || code === 'EPERM') {
      throw new CliError(`cannot read ${file}: permission denied (run as the server's user, or set ${alternative})`);
    }
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function lookedIn(dd: DataDir, file: string): string {
  if (dd.exists) return `(${path.join(dd.dir, file)} not found)`;
  const where = dd.source === 'default' ? `./data or ${dd.dir}` : dd.dir;
  return `or --data-dir to a server's data dir; there is none at ${where}`;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function lazy<T>(f: () => T): () => T {
  let done = false;
  let value: T;
  return () => {
    if (!done) {
      value = f();
      done = true;
    }
    return value;
  };
}
