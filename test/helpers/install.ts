// For the installer tests: build the agent once into a temp dir, run shell commands, make an
// expired host certificate. Agents started here use 127.0.4.x only.
import { spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildAgent, seaName } from '../../scripts/build-agent.js';
import { loadOrCreateRoot } from '../../server/ca/root.js';
import { signLeaf } from '../../server/ca/leaf.js';
import { x509 } from '../../server/ca/x509.js';
import { tempDir } from './server.js';

export interface Built {
  dir: string;
  sea: string;
  cleanup(): void;
}

export async function buildAgentOnce(): Promise<Built> {
  const dir = tempDir('hostmesh-agent-build-');
  await buildAgent({ outDir: dir });
  return { dir, sea: path.join(dir, seaName()), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function sh(script: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Ran> {
  return exec('sh', ['-c', script], env, timeoutMs);
}

export function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Ran> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Every path under `root`, relative, sorted: what an install left behind. */
export function listTree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      out.push(path.relative(root, full));
      if (e.isDirectory()) walk(full);
    }
  };
  walk(root);
  return out.sort();
}

/** A host certificate for the key in `keyPem`, signed by the server's real root, that expired two days ago. */
export async function expiredHostCert(serverDataDir: string, trustDomain: string, hostName: string, keyPem: string): Promise<string> {
  const root = await loadOrCreateRoot(path.join(serverDataDir, 'ca'), trustDomain);
  const spki = createPublicKey(keyPem).export({ type: 'spki', format: 'der' });
  const realNow = Date.now;
  // signLeaf stamps "now"; three days back with a one-day life puts the whole validity in the past.
  Date.now = () => realNow() - 3 * 24 * 3600_000;
  try {
    const cert = await signLeaf(root, {
      commonName: hostName,
      publicKey: new x509.PublicKey(spki),
      keyType: 'ec',
      uris: [`spiffe://${trustDomain}/host/${hostName}`],
      dnsNames: [],
      ipAddresses: [],
      extendedKeyUsages: [x509.ExtendedKeyUsage.clientAuth],
      ttlMs: 24 * 3600_000,
    });
    return cert.toString('pem') + '\n';
  } finally {
    Date.now = realNow;
  }
}
