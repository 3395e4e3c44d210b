// Installing an agent from the server: GET /install.sh (the installer with this server's address,
// CA fingerprint and key pin filled in), GET /install/info, and GET /install/<file> for the agent
// builds, their SHA-256 files and the systemd unit.
//
// All unauthenticated, on purpose: a host being installed has no credential yet, and nothing here
// is secret, being the same for every host. What admits a host is the join token, which reaches it
// as an installer argument and is checked by POST /v1/join. What makes the bytes trustworthy is
// the pinned server key (the install command) and the SHA-256 files the installer checks.
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { HmError } from '../../../shared/errors.js';
import { DOWNLOAD_NAME, DOWNLOAD_PREFIX, INSTALL_INFO_PATH, INSTALL_SCRIPT_PATH, pinOfCertPem, type InstallInfo } from '../../../shared/install.js';
import type { ApiContext } from '../context.js';

// dist/server/api/routes/install.js → the checkout (or installed package) root.
const ROOT = path.resolve(new URL('.', import.meta.url).pathname, '../../../..');

export interface InstallSources {
  /** Where `npm run build:agent` put the agent; HOSTMESH_AGENT_DIR, else dist-agent/ of this checkout. */
  agentDir: string;
  script: string;
  unit: string;
}

export function defaultInstallSources(env: NodeJS.ProcessEnv = process.env): InstallSources {
  return {
    agentDir: path.resolve(env['HOSTMESH_AGENT_DIR'] || path.join(ROOT, 'dist-agent')),
    script: path.join(ROOT, 'scripts/install.sh'),
    unit: path.join(ROOT, 'systemd/hostmesh-agent.service'),
  };
}

/** The script's defaults, each a line `NAME=''` in scripts/install.sh that is replaced when served. */
export function fillInstallScript(script: string, values: Record<'HM_SERVER' | 'HM_CA_FINGERPRINT' | 'HM_PIN', string>): string {
  let out = script;
  for (const [name, value] of Object.entries(values)) {
    // Values go inside single quotes: refuse anything that could end them.
    if (!/^[A-Za-z0-9.:/[\]+=_-]+$/.test(value)) throw new HmError('HM_ERR_INTERNAL', `cannot put ${name}=${value} into the installer`);
    const line = new RegExp(`^${name}=''$`, 'm');
    if (!line.test(out)) throw new HmError('HM_ERR_INTERNAL', `the installer has no ${name}='' line to fill in`);
    out = out.replace(line, `${name}='${value}'`);
  }
  return out;
}

export function installRoutes(app: FastifyInstance, ctx: ApiContext, serverCertPem: string | null, sources: InstallSources = defaultInstallSources()): void {
  const pin = serverCertPem ? pinOfCertPem(serverCertPem) : null;
  const info = async (): Promise<InstallInfo> => ({ server: ctx.publicUrl, caFingerprint: ctx.ca.fingerprint, pin: pin ?? '', builds: await builds(sources.agentDir) });

  app.get(INSTALL_INFO_PATH, { config: { access: 'public' }, schema: { tags: ['install'], summary: 'What the install command needs: server URL, CA fingerprint, TLS key pin, agent builds (no auth)' } }, info);

  app.get(INSTALL_SCRIPT_PATH, { config: { access: 'public' }, schema: { tags: ['install'], summary: 'The agent installer, for this server (no auth)' } }, async (_req, reply) => {
    if (!pin) throw new HmError('HM_ERR_INTERNAL', 'this server serves no TLS, so it has no key to pin');
    const script = fillInstallScript(await fs.readFile(sources.script, 'utf8'), { HM_SERVER: ctx.publicUrl, HM_CA_FINGERPRINT: ctx.ca.fingerprint, HM_PIN: pin });
    void reply.type('text/x-shellscript; charset=utf-8').header('cache-control', 'no-store');
    return script;
  });

  app.get(`${DOWNLOAD_PREFIX}:file`, {
    config: { access: 'public' },
    schema: { tags: ['install'], summary: 'An agent build, its .sha256, or the systemd unit (no auth)', params: Type.Object({ file: Type.String({ maxLength: 64 }) }) },
    handler: async (req, reply) => {
      const { file } = req.params as { file: string };
      if (!DOWNLOAD_NAME.test(file)) {
        throw new HmError('HM_ERR_NOT_FOUND', `no download named "${file}": try hostmesh-agent-linux-x64, hostmesh-agent.cjs (each with .sha256) or hostmesh-agent.service`);
      }
      const full = file === 'hostmesh-agent.service' ? sources.unit : path.join(sources.agentDir, file);
      let size: number;
      try {
        size = (await fs.stat(full)).size;
      } catch {
        throw new HmError('HM_ERR_AGENT_NOT_BUILT', `this server has no ${file} in ${path.dirname(full)}: run \`npm run build:agent\` where the server runs (or point HOSTMESH_AGENT_DIR at a directory holding the build)`);
      }
      const text = file.endsWith('.sha256') || file.endsWith('.service');
      void reply.type(text ? 'text/plain; charset=utf-8' : 'application/octet-stream').header('content-length', size).header('cache-control', 'no-store');
      return reply.send(createReadStream(full));
    },
  });
}

/** The builds an installer can use: the file and its checksum must both be there. */
async function builds(dir: string): Promise<string[]> {
  try {
    const names = new Set(await fs.readdir(dir));
    return [...names].filter((n) => DOWNLOAD_NAME.test(n) && !n.endsWith('.sha256') && names.has(`${n}.sha256`)).sort();
  } catch {
    return [];
  }
}
