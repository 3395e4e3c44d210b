// The host certificate in the state dir: present (or about to be obtained by joining), for the key
// beside it, issued by the mesh root, within its validity, and not past its renewal time.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { certBlocks, fingerprintOfDer, issuedByAny, keyMatchesCert, parseCert } from '../../agent/certs/pem.js';
import { STATE_FILES } from '../../agent/state/store.js';
import type { HostConfig } from '../../shared/host-config.js';
import { fail, pass, type CheckItem } from './result.js';

const NAME = 'host certificate';
// The agent renews at 2/3 of a certificate's life; with less than a third left, renewal is overdue.
const RENEW_AT = 2 / 3;

export async function checkHostCert(config: HostConfig, opts: { pre: boolean; now: number; configFile: string }): Promise<CheckItem> {
  const dir = config.stateDir;
  const certFile = path.join(dir, STATE_FILES.hostCert);
  const keyFile = path.join(dir, STATE_FILES.hostKey);
  let certText: string;
  let keyText: string;
  try {
    [certText, keyText] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') return fail(NAME, `cannot read ${dir}: permission denied`, 'run the check as root (sudo) or as the hostmesh user');
    if (code !== 'ENOENT') return fail(NAME, `cannot read ${certFile}: ${(e as Error).message}`, `check the state dir ${dir}`);
    if (config.token === null) {
      return fail(NAME, `none in ${dir}: this host has not joined and the config has no join token`, `make one on the server with \`hostmesh token create\` and set token: in ${opts.configFile}`);
    }
    if (opts.pre) return pass(NAME, `none yet: the agent joins with the token in ${opts.configFile} when it starts`);
    return fail(NAME, `none in ${dir}: the agent has not joined yet`, 'see why in the agent log: journalctl -u hostmesh-agent');
  }

  const leafPem = certBlocks(certText)[0];
  if (!leafPem) return fail(NAME, `${certFile} holds no certificate`, rejoinFix(config));
  let leaf: ReturnType<typeof parseCert>;
  try {
    leaf = parseCert(leafPem);
  } catch (e) {
    return fail(NAME, `${certFile} does not parse: ${(e as Error).message}`, rejoinFix(config));
  }
  if (!keyMatchesCert(keyText, leaf.x509)) return fail(NAME, `${certFile} is not for the key in ${keyFile}`, rejoinFix(config));

  const roots = await readRoots(path.join(dir, STATE_FILES.ca));
  if (!issuedByAny(leaf.x509, roots)) return fail(NAME, `not issued by a root in ${path.join(dir, STATE_FILES.ca)}`, rejoinFix(config));
  if (!roots.some((r) => fingerprintOfDer(r.raw) === config.caFingerprint)) {
    return fail(NAME, `no root in ${path.join(dir, STATE_FILES.ca)} has the configured caFingerprint: the state dir is from another mesh`, rejoinFix(config));
  }

  const { notBefore, notAfter } = leaf;
  const until = new Date(notAfter).toISOString();
  if (opts.now < notBefore) return fail(NAME, `not valid before ${new Date(notBefore).toISOString()}`, 'this host\'s clock is behind: sync it (timedatectl set-ntp true, or chrony)');
  if (opts.now >= notAfter) {
    return fail(NAME, `expired at ${until}`, `an expired host certificate cannot be renewed, only replaced: ${rejoinFix(config)}`);
  }
  const renewBy = notBefore + (notAfter - notBefore) * RENEW_AT;
  if (opts.now > renewBy) {
    return fail(NAME, `expires at ${until} (in ${humanMs(notAfter - opts.now)}) and is past its renewal time`, 'the agent renews while connected to the server: check that it runs and reaches the server (journalctl -u hostmesh-agent)');
  }
  return pass(NAME, `valid until ${until} (in ${humanMs(notAfter - opts.now)})`);
}

async function readRoots(file: string): Promise<Array<import('node:crypto').X509Certificate>> {
  try {
    return certBlocks(await readFile(file, 'utf8')).map((pem) => parseCert(pem).x509);
  } catch {
    return [];
  }
}

function rejoinFix(config: HostConfig): string {
  return `on the server run \`hostmesh delete host ${config.name}\` and \`hostmesh token create\`; here remove ${path.join(config.stateDir, 'host.*.pem')}, set the new token: and restart the agent`;
}

export function humanMs(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} days`;
}
