// What the server, the CLI and the installer agree on for installing an agent: the paths the
// server serves, the downloads it may offer, and the one-line install command.
//
// The command pins the server's TLS public key (curl --pinnedpubkey) rather than trusting a CA:
// the server's certificate comes from the mesh's own root, which a new host does not have yet.
// `-k` only skips the CA check; curl still refuses a server whose key is not the pinned one, so no
// byte is run before the server is known to be the one the operator copied the command from.
import { createHash, X509Certificate } from 'node:crypto';

export const INSTALL_SCRIPT_PATH = '/install.sh';
export const INSTALL_INFO_PATH = '/install/info';
export const DOWNLOAD_PREFIX = '/install/';

/** The files the installer may download: the bundle, the executables, their checksums, the unit. */
export const DOWNLOAD_NAME = /^(hostmesh-agent\.cjs|hostmesh-agent-linux-(?:x64|arm64))(\.sha256)?$|^hostmesh-agent\.service$/;

export interface InstallInfo {
  /** https://host:port the agent and the installer use. */
  server: string;
  /** sha256:<hex> of the mesh root, what the agent pins. */
  caFingerprint: string;
  /** sha256//<base64> of the server's TLS public key, what curl pins. */
  pin: string;
  /** Agent builds present on the server, e.g. hostmesh-agent-linux-x64, hostmesh-agent.cjs. */
  builds: string[];
}

/** curl's pin format: base64 SHA-256 of the DER SubjectPublicKeyInfo of the server's leaf. */
export function pinOfCertPem(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return `sha256//${createHash('sha256').update(spki).digest('base64')}`;
}

const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export function installCommand(info: Pick<InstallInfo, 'server' | 'pin'>, token: string): string {
  return `curl -fsSL -k --pinnedpubkey ${shellQuote(info.pin)} ${info.server}${INSTALL_SCRIPT_PATH} | sudo sh -s -- --token ${shellQuote(token)}`;
}
