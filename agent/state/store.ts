// The agent's state dir: its keys and certificates, the mesh CA bundle, and the last snapshot it
// applied. With these on disk an agent restarted while the server is down serves as before.
//
//   host.key.pem (0600) + host.crt.pem     the host identity (leaf first, then the chain)
//   services/<name>.key.pem (0600) + .crt.pem
//   ca.pem                                  the mesh roots
//   snapshot.json                           {revision, hash, slice} last applied
//   host.json                               {name, server, trustDomain, joinedAt}
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { hashOf } from '../../shared/canonical.js';
import { sliceValidator, type Slice } from '../../shared/protocol.js';
import { certBlocks, keyMatchesCert, parseCert } from '../certs/pem.js';
import { ensurePrivateDir, FILE_MODE, KEY_MODE, readIfExists, writeFileAtomic } from '../../shared/files.js';

export const STATE_FILES = {
  hostKey: 'host.key.pem',
  hostCert: 'host.crt.pem',
  ca: 'ca.pem',
  snapshot: 'snapshot.json',
  host: 'host.json',
  servicesDir: 'services',
} as const;

export interface CertPair {
  keyPem: string;
  /** Leaf first, then whatever chain the server sent. */
  chainPem: string;
}

export interface PersistedSnapshot {
  revision: number;
  hash: string;
  slice: Slice;
}

export interface HostInfo {
  name: string;
  server: string;
  trustDomain: string;
  joinedAt: string;
}

/** Why something on disk was ignored; the caller logs it. */
export type Discard = (file: string, reason: string) => void;

export class StateStore {
  constructor(
    readonly dir: string,
    private readonly onDiscard: Discard = () => undefined,
  ) {}

  async init(): Promise<void> {
    await ensurePrivateDir(this.dir);
    await ensurePrivateDir(path.join(this.dir, STATE_FILES.servicesDir));
    await fs.access(this.dir, fs.constants.W_OK);
  }

  readHostPair(): Promise<CertPair | null> {
    return this.readPair(this.file(STATE_FILES.hostKey), this.file(STATE_FILES.hostCert));
  }

  writeHostPair(pair: CertPair): Promise<void> {
    return this.writePair(this.file(STATE_FILES.hostKey), this.file(STATE_FILES.hostCert), pair);
  }

  readServicePair(service: string): Promise<CertPair | null> {
    return this.readPair(this.serviceFile(service, 'key'), this.serviceFile(service, 'crt'));
  }

  writeServicePair(service: string, pair: CertPair): Promise<void> {
    return this.writePair(this.serviceFile(service, 'key'), this.serviceFile(service, 'crt'), pair);
  }

  async readCaBundle(): Promise<string[] | null> {
    const text = await readIfExists(this.file(STATE_FILES.ca));
    if (text === null) return null;
    const blocks = certBlocks(text);
    if (blocks.length === 0) {
      this.onDiscard(this.file(STATE_FILES.ca), 'holds no certificate');
      return null;
    }
    return blocks;
  }

  writeCaBundle(pems: readonly string[]): Promise<void> {
    return writeFileAtomic(this.file(STATE_FILES.ca), pems.map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join(''), FILE_MODE);
  }

  /** The last applied snapshot, re-checked as if it had just arrived; a damaged file is ignored. */
  async readSnapshot(): Promise<PersistedSnapshot | null> {
    const file = this.file(STATE_FILES.snapshot);
    const text = await readIfExists(file);
    if (text === null) return null;
    let v: Partial<PersistedSnapshot>;
    try {
      v = JSON.parse(text) as Partial<PersistedSnapshot>;
    } catch {
      this.onDiscard(file, 'is not JSON');
      return null;
    }
    if (typeof v.revision !== 'number' || typeof v.hash !== 'string' || !sliceValidator.check(v.slice)) {
      this.onDiscard(file, 'is not a valid snapshot');
      return null;
    }
    if (hashOf(v.slice) !== v.hash) {
      this.onDiscard(file, 'does not match its own hash');
      return null;
    }
    return { revision: v.revision, hash: v.hash, slice: v.slice };
  }

  writeSnapshot(s: PersistedSnapshot): Promise<void> {
    return writeFileAtomic(this.file(STATE_FILES.snapshot), JSON.stringify(s) + '\n', KEY_MODE);
  }

  async readHostInfo(): Promise<HostInfo | null> {
    const text = await readIfExists(this.file(STATE_FILES.host));
    if (text === null) return null;
    try {
      const v = JSON.parse(text) as HostInfo;
      if (typeof v.name === 'string' && typeof v.trustDomain === 'string') return v;
    } catch {
      /* fall through */
    }
    this.onDiscard(this.file(STATE_FILES.host), 'is not valid');
    return null;
  }

  writeHostInfo(info: HostInfo): Promise<void> {
    return writeFileAtomic(this.file(STATE_FILES.host), JSON.stringify(info, null, 2) + '\n', FILE_MODE);
  }

  private file(name: string): string {
    return path.join(this.dir, name);
  }

  private serviceFile(service: string, part: 'key' | 'crt'): string {
    // Service names are DNS labels (validated in the host config), so they are safe file names.
    return path.join(this.dir, STATE_FILES.servicesDir, `${service}.${part}.pem`);
  }

  // A key and its cert live in two files, so replacing both cannot be one rename. The new key goes
  // to `<key>.next` first, then the cert, then the key is renamed into place. After a crash,
  // readPair finishes the swap if the cert already matches `<key>.next`, else drops it.
  private async writePair(keyFile: string, certFile: string, pair: CertPair): Promise<void> {
    const next = `${keyFile}.next`;
    await writeFileAtomic(next, pair.keyPem, KEY_MODE);
    await writeFileAtomic(certFile, pair.chainPem, FILE_MODE);
    await fs.rename(next, keyFile);
  }

  private async readPair(keyFile: string, certFile: string): Promise<CertPair | null> {
    const chainPem = await readIfExists(certFile);
    const next = `${keyFile}.next`;
    const nextKey = await readIfExists(next);
    if (chainPem === null) {
      if (nextKey !== null) await fs.rm(next, { force: true });
      return null;
    }
    const leafPem = certBlocks(chainPem)[0];
    let leaf;
    try {
      if (!leafPem) throw new Error('no certificate');
      leaf = parseCert(leafPem).x509;
    } catch {
      this.onDiscard(certFile, 'is not a PEM certificate');
      return null;
    }
    if (nextKey !== null) {
      if (keyMatchesCert(nextKey, leaf)) await fs.rename(next, keyFile);
      else await fs.rm(next, { force: true });
    }
    const keyPem = await readIfExists(keyFile);
    if (keyPem === null) {
      this.onDiscard(certFile, 'has no key file beside it');
      return null;
    }
    if (!keyMatchesCert(keyPem, leaf)) {
      this.onDiscard(certFile, `does not match ${path.basename(keyFile)}`);
      return null;
    }
    const st = await fs.stat(keyFile);
    if ((st.mode & 0o077) !== 0) await fs.chmod(keyFile, KEY_MODE);
    return { keyPem, chainPem };
  }
}
